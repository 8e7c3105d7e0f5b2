import sys

from csta_front.process import main

sys.exit(main())
