/* A shared library that exports something, but not fastest_backend_entry. */
int fastest_backend_entry_typo(void) { return 1; }
