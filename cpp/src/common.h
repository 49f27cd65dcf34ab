// Internal helpers shared by every part of the library: errors, last-error text.
#pragma once

#include "depth_anything.h"

#include <new>
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

// Runs `f` at the C API boundary: exceptions become a status plus the last-error text.
template <typename F>
da3_status guarded(F &&f) {
    try {
        f();
        set_last_error("");
        return DA3_OK;
    } catch (const error &e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
        return DA3_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_last_error(std::string("internal error: ") + e.what());
        return DA3_ERR_INTERNAL;
    } catch (...) {
        set_last_error("internal error");
        return DA3_ERR_INTERNAL;
    }
}

}  // namespace da3
