"""OCI layers: diffing trees and overlay upper dirs, the normalised tar, safe extraction."""
