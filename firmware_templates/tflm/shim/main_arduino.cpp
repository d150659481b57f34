// mcuq shim: one Arduino boot (setup(), which runs the self-test), then the end.
#include "mcuq_shim.h"

void setup();

int main() {
  setup();
  mcuq_shim_exit(0);
  return 0;
}
