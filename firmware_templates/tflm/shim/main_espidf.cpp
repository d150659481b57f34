// mcuq shim: ESP-IDF boot; the firmware's loop ends the program at its first vTaskDelay.
#include "mcuq_shim.h"

extern "C" void app_main(void);

int main() {
  app_main();
  mcuq_shim_exit(0);
  return 0;
}
