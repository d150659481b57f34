"""The board itself: the validation link in every generated firmware and its host side.

``firmware`` renders the link's C files into a project; ``link`` frames lines on a serial port
(pyserial); ``session`` speaks the protocol (identify, load, run, reset); ``check`` compares what
the board computed with x86 TFLite Micro for ``mcuq validate --device``; ``emulated`` starts the
emulators (simavr, qemu, a host build) on a pseudo-terminal so all of it runs without a board.
The protocol is documented in docs/device_protocol.md.
"""
