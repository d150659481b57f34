// mcuq shim on the host: stdout, the monotonic clock, exit().
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "mcuq_shim.h"

static int g_arg = -1;

extern "C" void mcuq_shim_write(const char* text) {
  fputs(text, stdout);
  fflush(stdout);
}
extern "C" uint64_t mcuq_shim_nanos(void) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
extern "C" void mcuq_shim_exit(int code) {
  fflush(stdout);
  exit(code);
}
extern "C" int mcuq_shim_arg(void) { return g_arg; }

// MCUQ_SHIM_LINK=1: the validation link is served on stdin/stdout (a pseudo-terminal), so the
// main loop keeps running and stdin never blocks (an empty read is "no byte waiting").
static bool link_mode() {
  const char* value = getenv("MCUQ_SHIM_LINK");
  return value != nullptr && value[0] == '1';
}
extern "C" int mcuq_shim_link(void) { return link_mode() ? 1 : 0; }
extern "C" int mcuq_shim_read(void) {  // stdin: /dev/null, or non-blocking in link mode
  unsigned char c = 0;
  return read(0, &c, 1) == 1 ? c : -1;
}
extern "C" void mcuq_shim_idle(uint32_t ms) {
  if (!link_mode()) mcuq_shim_exit(0);
  usleep(ms > 1 ? 1000 : ms * 1000);
}
__attribute__((constructor)) static void link_stdin() {
  if (link_mode()) {
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  } else if (freopen("/dev/null", "r", stdin) == nullptr) {  // one boot: the link must find no input, never wait
    exit(4);
  }
}

// Runs before main(): the argument comes from the command line, as in qemu's semihosting.
extern "C" void mcuq_shim_set_arg(int value) { g_arg = value; }
__attribute__((constructor)) static void read_arg() {
  FILE* f = fopen("/proc/self/cmdline", "rb");
  if (f == nullptr) return;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  size_t first = 0;
  while (first < n && buf[first] != 0) ++first;
  if (first + 1 < n) g_arg = atoi(buf + first + 1);
}
