/* mcuq emulator harness for AVR with the validation link: the boot self-test, then the link on
 * UART0 (simavr connects it to a pseudo-terminal: mcuq/device/emulated.py). Timer1 counts CPU
 * cycles, as in avr_main.c, so the link reports the same cycles the self-test does. */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <stdint.h>

#include "mcuq_link.h"
#include "mcuq_selftest.h"

const uint8_t _mmcu[] __attribute__((section(".mmcu"), used)) = {
    1, sizeof(MCUQ_MMCU_NAME), MCUQ_MMCU_NAME_BYTES,
    2, 4, (uint8_t)(F_CPU), (uint8_t)(F_CPU >> 8), (uint8_t)(F_CPU >> 16), (uint8_t)(F_CPU >> 24),
};

static volatile uint16_t overflows;
ISR(TIMER1_OVF_vect) { ++overflows; }

void mcuq_link_putc(char c) {
  while (!(UCSR0A & (1 << UDRE0))) {
  }
  UDR0 = (uint8_t)c;
}

int mcuq_link_read(void) { return (UCSR0A & (1 << RXC0)) ? (int)UDR0 : -1; }

void mcuq_hw_print(const char* text) {
  while (*text) mcuq_link_putc(*text++);
  mcuq_link_putc('\n');
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
uint32_t mcuq_link_ticks(void) { return mcuq_hw_ticks(); }
const uint32_t mcuq_link_tick_hz = F_CPU;

size_t mcuq_link_stack_room(void) {
  extern char __heap_start;
  extern char* __brkval;
  char here = 0;
  char* heap_end = __brkval ? __brkval : &__heap_start;
  uint16_t room = (uint16_t)(&here - heap_end);
  return &here > heap_end && room > 64u ? room - 64u : 0u;
}

int main(void) {
  UCSR0B = (1 << TXEN0) | (1 << RXEN0);
  TCCR1A = 0;
  TCCR1B = (1 << CS10); /* no prescaler: one tick per CPU cycle */
  TIMSK1 = (1 << TOIE1);
  sei();
  mcuq_selftest();
  mcuq_link_begin();
  for (;;) mcuq_link_poll();
}
