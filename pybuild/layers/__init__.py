"""OCI layers: diffing trees and overlay upper dirs, the tar format (the normalised layer tar
and the tars ``save`` writes), compression, safe extraction."""
