//! [`Frame`]: one encoded server message, as rooms queue it to sessions and sessions write it.

use bytes::Bytes;

/// One encoded server message (JSON text), shared by every session that sends it: cloning is a
/// reference count, never a copy. Always valid UTF-8: it can only be made from a `String` or a
/// `&'static str`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame(Bytes);

impl Frame {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: a Frame is only made from a `String` or a `&'static str` (the `From` impls
        // below), so its bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes, to write on a socket (a reference count, no copy).
    pub(crate) fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Frame {
        Frame(Bytes::from(text))
    }
}

impl From<&'static str> for Frame {
    fn from(text: &'static str) -> Frame {
        Frame(Bytes::from_static(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::Frame;

    #[test]
    fn a_frame_keeps_its_text_and_shares_its_bytes() {
        let text = "{\"t\":\"update\",\"é\":1}";
        let frame = Frame::from(String::from(text));
        let copy = frame.clone();
        assert_eq!(copy.as_str(), text);
        assert_eq!(frame.len(), 21);
        assert_eq!(frame.into_bytes().as_ptr(), copy.into_bytes().as_ptr());
    }
}
