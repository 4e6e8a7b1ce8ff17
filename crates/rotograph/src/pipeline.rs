//! Batch stylize: a frame source through a stylizer into a resumable run folder.
// In progress (issue 2, lead).
