"""`python -m governance.cli`."""
from governance.cli import main

main()
