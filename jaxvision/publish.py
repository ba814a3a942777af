"""`python -m jaxvision.publish runs/NAME`: the command line of jaxvision.research.publish."""

import sys

from jaxvision.research.publish import main

if __name__ == "__main__":
    sys.exit(main())
