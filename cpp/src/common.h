// Internal helpers shared by every part of the library: errors, last-error text.
#pragma once

#include "depth_anything.h"

#include <algorithm>
#include <exception>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace da3 {

// Thrown inside the library, caught at the C API boundary (api.cpp) and turned into a
// da3_status plus the thread-local last-error text.
class error : public std::runtime_error {
public:
    error(da3_status status, const std::string &msg, int os_errno = 0)
        : std::runtime_error(msg), status_(status), os_errno_(os_errno) {}
    da3_status status() const { return status_; }
    int os_errno() const { return os_errno_; }

private:
    da3_status status_;
    int os_errno_;
};

[[noreturn]] inline void fail(da3_status status, const std::string &msg) { throw error(status, msg); }
// DA3_ERR_IO with the OS error number (errno) behind it, returned by da3_last_errno().
[[noreturn]] inline void fail_io(const std::string &msg, int os_errno) { throw error(DA3_ERR_IO, msg, os_errno); }

// Thread-local text and errno returned by da3_last_error() / da3_last_errno(); defined in api.cpp.
void set_last_error(const std::string &msg, int os_errno = 0);

// Runs fn(i) for every i in [0, n) on up to n_threads threads (the caller's among them), items
// interleaved across threads. The first exception thrown is rethrown once all have finished;
// items of a thread that could not be started run on the caller's.
inline void parallel_for(int n, int n_threads, const std::function<void(int)> &fn) {
    const int nt = std::max(1, std::min(n_threads, n));
    std::vector<std::exception_ptr> errors(nt);
    auto run = [&](int t) {
        try {
            for (int i = t; i < n; i += nt) fn(i);
        } catch (...) {
            errors[t] = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    int started = 1;
    try {
        for (; started < nt; ++started) threads.emplace_back(run, started);
    } catch (const std::system_error &) {
    }
    for (int t = started; t < nt; ++t) run(t);
    run(0);
    for (std::thread &th : threads) th.join();
    for (const std::exception_ptr &e : errors) {
        if (e) std::rethrow_exception(e);
    }
}

// Runs `f` at the C API boundary: exceptions become a status plus the last-error text.
template <typename F>
da3_status guarded(F &&f) {
    try {
        f();
        set_last_error("");
        return DA3_OK;
    } catch (const error &e) {
        set_last_error(e.what(), e.os_errno());
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
