"""`python -m harfusion ...`: the `harfusion` command, for an interpreter without the script."""

from harfusion.command import main

raise SystemExit(main())
