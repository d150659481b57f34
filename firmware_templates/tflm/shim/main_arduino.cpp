// mcuq shim: one Arduino boot (setup(), which runs the self-test), then the end; when the
// validation link is served (mcuq_shim_link()), loop() runs until the program is killed.
#include "mcuq_shim.h"

void setup();

void loop();

int main() {
  setup();
  while (mcuq_shim_link()) loop();  // the validation link is served from loop(), as on the board
  mcuq_shim_exit(0);
  return 0;
}
