/* mcuq emulator harness for AVR (simavr): UART0 for the log, Timer1 for exact cycle counts.
 * Build: avr-gcc -mmcu=<mcu> -DMCUQ_MMCU_NAME='"<mcu>"' -DF_CPU=16000000UL ...
 *        -Wl,--undefined=_mmcu,--section-start=.mmcu=0x910000
 * With -DMCUQ_EMULATED_LINK (mcuq/device/emulated.py, which also compiles mcuq_api.c and
 * mcuq_link.c) the validation link answers on UART0 after the self-test, through the same UART
 * routine and the same Timer1 cycles, instead of ending the simulation (simavr connects the UART
 * to a pseudo-terminal). One harness for both, so the self-test and the link run the same code. */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <stdint.h>

#include "mcuq_selftest.h"
#if defined(MCUQ_EMULATED_LINK)
#include "mcuq_link.h"
#define uart_put mcuq_link_putc /* the link's send hook is the log's UART routine */
#define UART_PUT_LINKAGE
#define UART_RX (1 << RXEN0)
#else
#define UART_PUT_LINKAGE static /* the self-test alone: the UART routine is this file's own */
#define UART_RX 0
#endif

/* simavr reads the MCU name (tag 1) and frequency (tag 2) from the .mmcu section. */
const uint8_t _mmcu[] __attribute__((section(".mmcu"), used)) = {
    1, sizeof(MCUQ_MMCU_NAME), MCUQ_MMCU_NAME_BYTES,
    2, 4, (uint8_t)(F_CPU), (uint8_t)(F_CPU >> 8), (uint8_t)(F_CPU >> 16), (uint8_t)(F_CPU >> 24),
};

static volatile uint16_t overflows;
ISR(TIMER1_OVF_vect) { ++overflows; }

UART_PUT_LINKAGE void uart_put(char c) {
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

#if defined(MCUQ_EMULATED_LINK)
/* The link's other platform hooks (src/mcuq_link_port.cpp on a real board). */
int mcuq_link_read(void) { return (UCSR0A & (1 << RXC0)) ? (int)UDR0 : -1; }
uint32_t mcuq_link_ticks(void) { return mcuq_hw_ticks(); }
const uint32_t mcuq_link_tick_hz = F_CPU;

size_t mcuq_link_stack_room(void) { /* SP read as a register: no frame for a local's address */
  extern char __heap_start;
  extern char* __brkval;
  uint16_t heap_end = (uint16_t)(__brkval ? __brkval : &__heap_start), sp = SP;
  return sp > heap_end + 64u ? sp - heap_end - 64u : 0u;
}
#endif

int main(void) {
  UCSR0B = (1 << TXEN0) | UART_RX;
  TCCR1A = 0;
  TCCR1B = (1 << CS10); /* no prescaler: one tick per CPU cycle */
  TIMSK1 = (1 << TOIE1);
  sei();
  mcuq_selftest();
#if defined(MCUQ_EMULATED_LINK)
  mcuq_link_begin();
  for (;;) mcuq_link_poll();
#else
  cli();
  set_sleep_mode(SLEEP_MODE_PWR_DOWN);
  sleep_enable();
  sleep_cpu(); /* simavr: sleeping with interrupts off ends the simulation */
  for (;;) {
  }
#endif
}
