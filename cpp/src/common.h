// Internal helpers shared by every part of the library: errors, last-error text.
#pragma once

#include "depth_anything.h"

#include <stdexcept>
#include <string>

namespace da3 {

// Thrown inside the library, caught at the C API boundary (api.cpp) and turned into a
// da3_status plus the thread-local last-error text.
class error : public std::runtime_error {
public:
    error(da3_status status, const std::string &msg) : std::runtime_error(msg), status_(status) {}
    da3_status status() const { return status_; }

private:
    da3_status status_;
};

[[noreturn]] inline void fail(da3_status status, const std::string &msg) { throw error(status, msg); }

// Thread-local text returned by da3_last_error(); defined in api.cpp.
void set_last_error(const std::string &msg);

}  // namespace da3
