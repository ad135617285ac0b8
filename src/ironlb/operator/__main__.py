"""`python -m ironlb.operator`."""

from ironlb.operator.main import main

main()
