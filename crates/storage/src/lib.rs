//! Pieces mapped to files, verified writes and resume data (called by the node, not by cores).
