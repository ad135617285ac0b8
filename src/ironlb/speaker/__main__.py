"""`python -m ironlb.speaker`."""

from ironlb.speaker.main import main

main()
