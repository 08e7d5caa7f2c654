#include "stn/experiments/build_info.h"

// Generated at build time by cmake/build_info.cmake; kept out of every other file so a new
// commit recompiles only this one.
#include "stn_build_commit.h"

namespace stn::cli {

const char* build_commit() { return STN_BUILD_COMMIT; }

}  // namespace stn::cli
