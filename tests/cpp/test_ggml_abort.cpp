// A failed GGML_ASSERT / GGML_ABORT after the library is initialized: the process still dies
// by SIGABRT, with our one-line message on stderr, nothing on stdout and no debugger
// backtrace (ggml's default attaches gdb and prints its backtrace to stdout). The abort runs
// in a forked child whose output is captured through pipes.
// usage: da3_test_ggml_abort   (exit 0 ok, 1 failure)
#include "depth_anything.h"

#include "ggml.h"

#include <csignal>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

static std::string drain(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, (size_t)n);
    close(fd);
    return s;
}

int main() {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) return 1;
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]), close(err[0]), close(out[1]), close(err[1]);
        da3_context *ctx = nullptr;
        da3_load("/nonexistent/model.gguf", nullptr, &ctx);  // any load initializes the library
        GGML_ABORT("test abort %d", 42);
    }
    close(out[1]), close(err[1]);
    const std::string so = drain(out[0]), se = drain(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    ok = ok && so.empty() && se.find("depth-anything-cpp: fatal error inside ggml") != std::string::npos &&
         se.find("test abort 42") != std::string::npos && se.find("gdb") == std::string::npos &&
         se.find("#0 ") == std::string::npos;
    if (!ok) {
        std::fprintf(stderr, "FAIL: status %d, stdout [%s], stderr [%s]\n", status, so.c_str(), se.c_str());
        return 1;
    }
    std::printf("ok: ggml abort -> SIGABRT with one message on stderr\n");
    return 0;
}
