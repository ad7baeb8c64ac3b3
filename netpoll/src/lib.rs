//! goro-netpoll
