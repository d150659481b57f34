/* simavr with UART0 on a pseudo-terminal, for mcuq's device tests (mcuq/device/emulated.py).
 * Usage: mcuq_simavr_pty MCU F_CPU FIRMWARE.elf; prints "pty: /dev/pts/N" on stdout, then runs
 * until the firmware stops (exit code 0) or crashes (exit code 3). Host bytes are fed to the
 * UART only while its receive FIFO signals XON, so none is dropped in the simulator. SIGUSR1
 * resets the AVR (a board that reboots mid-run: the tests' HardFault/brown-out stand-in). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_irq.h>

static int master_fd = -1;
static volatile int xon = 1;
static volatile sig_atomic_t reset_requested = 0;

static void on_usr1(int sig) {
  (void)sig;
  reset_requested = 1;
}

static void on_output(struct avr_irq_t* irq, uint32_t value, void* param) {
  unsigned char byte = (unsigned char)value;
  (void)irq;
  (void)param;
  if (write(master_fd, &byte, 1) < 0 && errno != EAGAIN) { /* nobody reads: the byte is lost, as on a wire */
  }
}
static void on_xon(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq, (void)value, (void)param;
  xon = 1;
}
static void on_xoff(struct avr_irq_t* irq, uint32_t value, void* param) {
  (void)irq, (void)value, (void)param;
  xon = 0;
}

int main(int argc, char** argv) {
  elf_firmware_t firmware;
  avr_t* avr;
  uint32_t flags = 0;
  int slave_fd, state = cpu_Running, i;
  char name[256];
  struct termios tio;
  avr_irq_t* input;
  if (argc != 4) {
    fprintf(stderr, "usage: %s MCU F_CPU FIRMWARE.elf\n", argv[0]);
    return 2;
  }
  memset(&firmware, 0, sizeof(firmware));
  if (elf_read_firmware(argv[3], &firmware) != 0) {
    fprintf(stderr, "cannot read %s\n", argv[3]);
    return 2;
  }
  snprintf(firmware.mmcu, sizeof(firmware.mmcu), "%s", argv[1]);
  firmware.frequency = (uint32_t)strtoul(argv[2], NULL, 10);
  avr = avr_make_mcu_by_name(firmware.mmcu);
  if (!avr) {
    fprintf(stderr, "unknown MCU %s\n", argv[1]);
    return 2;
  }
  avr_init(avr);
  avr_load_firmware(avr, &firmware);
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~(uint32_t)AVR_UART_FLAG_STDIO;
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  if (openpty(&master_fd, &slave_fd, name, NULL, NULL) != 0) {
    perror("openpty");
    return 2;
  }
  tcgetattr(slave_fd, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave_fd, TCSANOW, &tio); /* kept open: the master never sees EIO while no host is attached */
  fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_output, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);
  input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  signal(SIGUSR1, on_usr1);
  printf("pty: %s\n", name);
  fflush(stdout);
  while (state != cpu_Done && state != cpu_Crashed) {
    for (i = 0; i < 2000 && state != cpu_Done && state != cpu_Crashed; ++i) state = avr_run(avr);
    if (reset_requested) {
      reset_requested = 0;
      avr_reset(avr);
      state = cpu_Running;
    }
    while (xon) {
      unsigned char byte;
      if (read(master_fd, &byte, 1) != 1) break;
      avr_raise_irq(input, byte);
    }
  }
  return state == cpu_Crashed ? 3 : 0;
}
