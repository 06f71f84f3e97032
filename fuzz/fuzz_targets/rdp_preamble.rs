//! What the host reads before it splices an RDP session: the client's
//! RDCleanPath request (through the end-to-end channel), the TPKT header
//! of the RDP server's X.224 answer and the logon the answer chose.
#![no_main]

use ironrdp_rdcleanpath::RDCleanPathPdu;
use libfuzzer_sys::fuzz_target;
use proto::x224::{server_logon, tpkt_len, MAX_X224_LEN, TPKT_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let _ = RDCleanPathPdu::detect(data);
    let _ = RDCleanPathPdu::from_der(data);
    let _ = server_logon(data);
    if let Some(header) = data.first_chunk::<TPKT_HEADER_LEN>() {
        if let Ok(len) = tpkt_len(*header) {
            assert!((TPKT_HEADER_LEN..=MAX_X224_LEN).contains(&len));
        }
    }
});
