"""The build context: ``.dockerignore``, COPY wildcards, and the walk that digests sources."""
