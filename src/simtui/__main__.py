"""``python -m simtui``: the ``simtui`` command."""

from simtui.launch import main

if __name__ == "__main__":
    main()
