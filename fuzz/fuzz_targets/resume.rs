//! Arbitrary bytes as a resume file: parsing must never panic, and accepted resume data must
//! survive its own encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage::ResumeData;

fuzz_target!(|data: &[u8]| {
    if let Ok(resume) = ResumeData::from_bytes(data) {
        let again = ResumeData::from_bytes(&resume.to_bytes()).expect("own output parses");
        assert_eq!(again, resume);
    }
});
