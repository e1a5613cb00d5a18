"""The image model: references, config, manifest, media types and platform."""
