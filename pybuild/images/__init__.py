"""Operations on stored images: import a rootfs, inspect and history, ``images --filter``."""
