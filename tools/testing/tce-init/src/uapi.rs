// SPDX-License-Identifier: GPL-2.0

//! The structures of `include/uapi/tce_accel.h`, as `rust/tce_uapi` defines them (once, for
//! every program of the project), under the names the tests use.

pub use tce_uapi::tce_accel::{
    CreateTableArgs as CreateTable,
    RawWindow as Window,
    TableInfoArgs as TableInfo,
    TABLE_INFO_SIZE,
    TABLE_PAGES_SIZE, //
};
