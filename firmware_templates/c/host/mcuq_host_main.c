/* Host harness for the plain-C runtime: reads samples from stdin, writes outputs to stdout.
 * stdin: uint32 count, then per sample one byte (1: reset the model's state first) and the
 * input tensors' bytes in order.
 * stdout: per sample the output tensors' bytes in order. */
#include <stdint.h>
#include <stdio.h>

#include "mcuq_model.h"

int main(void) {
  uint32_t count = 0, s;
  int i, reset;
  if (fread(&count, sizeof(count), 1, stdin) != 1) return 2;
  for (s = 0; s < count; ++s) {
    if ((reset = getchar()) == EOF) return 3;
    if (reset) mcuq_reset();
    for (i = 0; i < MCUQ_NUM_INPUTS; ++i) {
      if (fread(mcuq_input(i), 1, mcuq_input_bytes(i), stdin) != mcuq_input_bytes(i)) return 3;
    }
    mcuq_invoke();
    for (i = 0; i < MCUQ_NUM_OUTPUTS; ++i) fwrite(mcuq_output(i), 1, mcuq_output_bytes(i), stdout);
  }
  return 0;
}
