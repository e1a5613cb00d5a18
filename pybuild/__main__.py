from pybuild.entry import main

main()
