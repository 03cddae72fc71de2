from liquid_edge.cli import main

main()
