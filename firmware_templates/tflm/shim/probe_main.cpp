// mcuq arena probe: one fresh interpreter on an N-byte arena (N from the command line), with
// the library, model bytes and ops of the firmware. mcuq bisects N in fresh processes,
// because a too-small arena can crash (x86) or corrupt memory (Cortex-M) instead of failing.
// With MCUQ_PROBE_HOST_IO (host only): argv[2] holds input vectors, outputs go to argv[3].
#include <stdio.h>
#include <string.h>

#include "mcuq_shim.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

using McuqProbeResolver = tflite::MicroMutableOpResolver<64>;
extern const unsigned char g_mcuq_probe_model[];
bool mcuq_probe_register(McuqProbeResolver& resolver);

alignas(16) static uint8_t g_arena[MCUQ_PROBE_ARENA_MAX];

static void say(const char* fmt, unsigned a, unsigned b, unsigned c) {
  char line[128];
  snprintf(line, sizeof line, fmt, a, b, c);
  mcuq_shim_write(line);
}

static uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  int arg = mcuq_shim_arg();
  unsigned n = (arg > 0 && arg <= MCUQ_PROBE_ARENA_MAX) ? static_cast<unsigned>(arg) : MCUQ_PROBE_ARENA_MAX;
  const tflite::Model* model = tflite::GetModel(g_mcuq_probe_model);
  static McuqProbeResolver resolver;
  if (!mcuq_probe_register(resolver)) {
    say("mcuq: probe register FAIL %u %u %u\n", n, 0, 0);
    return 2;
  }
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, n);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    say("mcuq: probe %u alloc FAIL %u %u\n", n, 0, 0);
    return 1;
  }
  unsigned used = static_cast<unsigned>(interpreter.arena_used_bytes());
#ifdef MCUQ_PROBE_HOST_IO
  if (argc >= 4) {
    FILE* in = fopen(argv[2], "rb");
    FILE* out = fopen(argv[3], "wb");
    if (in == nullptr || out == nullptr) return 4;
    // argv[4]: one '1' (reset the state first, mcuq.model.state) or '0' per vector.
    const char* resets = argc >= 5 ? argv[4] : "";
    for (size_t v = 0;; ++v) {
      bool reset = v >= strlen(resets) || resets[v] == '1';  // no flag: each vector on its own
      if (v > 0 && reset && interpreter.Reset() != kTfLiteOk) return 6;
      bool got = true;
      for (size_t i = 0; i < interpreter.inputs_size() && got; ++i) {
        TfLiteTensor* t = interpreter.input(i);
        got = fread(t->data.raw, 1, t->bytes, in) == t->bytes;
      }
      if (!got) break;
      if (interpreter.Invoke() != kTfLiteOk) return 5;
      for (size_t o = 0; o < interpreter.outputs_size(); ++o) {
        TfLiteTensor* t = interpreter.output(o);
        fwrite(t->data.raw, 1, t->bytes, out);
      }
    }
    fclose(in);
    fclose(out);
    say("mcuq: probe %u OK used=%u vectors %u\n", n, used, 0);
    return 0;
  }
#endif
  for (size_t i = 0; i < interpreter.inputs_size(); ++i) {
    TfLiteTensor* t = interpreter.input(i);
    for (size_t b = 0; b < t->bytes; ++b) t->data.raw[b] = static_cast<char>(b * 37u + 11u * i + 5u);
  }
  uint64_t start = mcuq_shim_nanos();
  if (interpreter.Invoke() != kTfLiteOk) {
    say("mcuq: probe %u invoke FAIL %u %u\n", n, 0, 0);
    return 1;
  }
  unsigned elapsed = static_cast<unsigned>(mcuq_shim_nanos() - start);
  uint32_t crc = 0;
  for (size_t o = 0; o < interpreter.outputs_size(); ++o) {
    TfLiteTensor* t = interpreter.output(o);
    crc = crc32(reinterpret_cast<const uint8_t*>(t->data.raw), t->bytes, crc);
  }
  say("mcuq: probe %u OK used=%u crc=%08x\n", n, used, crc);
  say("mcuq: probe_nanos=%u %u %u\n", elapsed, 0, 0);
  return 0;
}
