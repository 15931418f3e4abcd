//! Incremental technical indicators (placeholder; being written).
