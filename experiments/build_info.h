// Which source the program was built from, for the records a run leaves behind.
#pragma once

namespace stn::cli {

// The git commit of the build ("<sha>-dirty" if tracked files had changes, "unknown"
// outside a git checkout).
const char* build_commit();

}  // namespace stn::cli
