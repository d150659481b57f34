// mcuq shim: the part of the Arduino API that TFLite Micro libraries and mcuq projects use.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcuq_shim.h"

inline unsigned long micros() { return static_cast<unsigned long>(mcuq_shim_nanos() / 1000u); }
inline unsigned long millis() { return static_cast<unsigned long>(mcuq_shim_nanos() / 1000000u); }
inline void delayMicroseconds(unsigned int) {}
inline void delay(unsigned long) {}

class McuqShimSerial {
 public:
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  size_t print(const char* s) { mcuq_shim_write(s); return strlen(s); }
  size_t write(uint8_t c) { char b[2] = {static_cast<char>(c), 0}; mcuq_shim_write(b); return 1; }
  size_t print(unsigned long v) { char b[24]; snprintf(b, sizeof b, "%lu", v); return print(b); }
  size_t print(long v) { char b[24]; snprintf(b, sizeof b, "%ld", v); return print(b); }
  size_t print(unsigned int v) { return print(static_cast<unsigned long>(v)); }
  size_t print(int v) { return print(static_cast<long>(v)); }
  size_t print(double v) { char b[32]; snprintf(b, sizeof b, "%.2f", v); return print(b); }
  size_t println() { return print("\n"); }
  template <typename T> size_t println(T v) { size_t n = print(v); return n + println(); }
  void flush() {}
  // One byte of look-ahead: available() says whether a byte waits, read() takes it.
  int available() {
    if (pending_ < 0) pending_ = mcuq_shim_read();
    return pending_ >= 0 ? 1 : 0;
  }
  int read() {
    int c = pending_ >= 0 ? pending_ : mcuq_shim_read();
    pending_ = -1;
    return c;
  }

 private:
  int pending_ = -1;
};
inline McuqShimSerial Serial;
namespace arduino {}
