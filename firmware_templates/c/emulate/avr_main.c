/* mcuq emulator harness for AVR (simavr): UART0 for the log, Timer1 for exact cycle counts.
 * Build: avr-gcc -mmcu=<mcu> -DMCUQ_MMCU_NAME='"<mcu>"' -DF_CPU=16000000UL ...
 *        -Wl,--undefined=_mmcu,--section-start=.mmcu=0x910000 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <stdint.h>

#include "mcuq_selftest.h"

/* simavr reads the MCU name (tag 1) and frequency (tag 2) from the .mmcu section. */
const uint8_t _mmcu[] __attribute__((section(".mmcu"), used)) = {
    1, sizeof(MCUQ_MMCU_NAME), MCUQ_MMCU_NAME_BYTES,
    2, 4, (uint8_t)(F_CPU), (uint8_t)(F_CPU >> 8), (uint8_t)(F_CPU >> 16), (uint8_t)(F_CPU >> 24),
};

static volatile uint16_t overflows;
ISR(TIMER1_OVF_vect) { ++overflows; }

static void uart_put(char c) {
  while (!(UCSR0A & (1 << UDRE0))) {
  }
  UDR0 = (uint8_t)c;
}

void mcuq_hw_print(const char* text) {
  while (*text) uart_put(*text++);
  uart_put('\n');
}

uint32_t mcuq_hw_ticks(void) {
  uint16_t high, low;
  uint8_t sreg = SREG;
  cli();
  low = TCNT1;
  high = overflows;
  if ((TIFR1 & (1 << TOV1)) && low < 0x8000u) ++high;
  SREG = sreg;
  return ((uint32_t)high << 16) | low;
}

const char* const mcuq_hw_tick_unit = "cycles";

int main(void) {
  UCSR0B = (1 << TXEN0);
  TCCR1A = 0;
  TCCR1B = (1 << CS10); /* no prescaler: one tick per CPU cycle */
  TIMSK1 = (1 << TOIE1);
  sei();
  mcuq_selftest();
  cli();
  set_sleep_mode(SLEEP_MODE_PWR_DOWN);
  sleep_enable();
  sleep_cpu(); /* simavr: sleeping with interrupts off ends the simulation */
  for (;;) {
  }
}
