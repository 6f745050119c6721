"""`python -m governance.cli`."""
from governance.cli import main

if __name__ == "__main__":  # a spawned training worker imports this module as __mp_main__: it must not run the CLI
    main()
