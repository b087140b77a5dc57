"""The local development stack: emulators, stand-ins, functions under functions-framework, and a gateway."""
