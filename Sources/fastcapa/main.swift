import FastcapaCLI
FastcapaMain.main()
