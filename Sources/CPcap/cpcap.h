// libpcap as a system module (pkg-config: libpcap): the filter compiler
// (pcap_compile on a dead handle) and the offline matcher. FastcapaFilter owns
// every call.
#include <pcap/pcap.h>
