//! The code tonic and prost generate from `proto/time_sync.proto` (package `distributed_fs`):
//! the messages, the `TimeSyncService` server trait and its client.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("distributed_fs");
