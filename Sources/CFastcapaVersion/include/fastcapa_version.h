#ifndef FASTCAPA_VERSION_H
#define FASTCAPA_VERSION_H

/// The version a package build asked for (Scripts/package: FASTCAPA_VERSION=1.2.0, which
/// Package.swift passes to version.c as a define), or NULL for Version.swift's own.
/// Only version.c sees the define, so building another version recompiles one file and links.
const char *_Nullable fastcapa_version_override(void);

#endif
