//! SQL of the `imports` and `import_rejects` tables and the batched insertion
//! of imported contacts.
