//! [`Frame`]: one encoded server message, as rooms queue it to sessions and sessions write it.

use bytes::Bytes;

/// One encoded server message (JSON text), shared by every session that sends it: cloning is a
/// reference count, never a copy. Always valid UTF-8: it can only be made from a `String`, a
/// `&'static str`, or bytes checked by [`Frame::from_utf8`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame(Bytes);

impl Frame {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: a Frame is only made from a `String`, a `&'static str` (the `From` impls
        // below) or bytes `from_utf8` checked, so its bytes are valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// Bytes that must be UTF-8 (a frame another node encoded), kept without a copy.
    pub(crate) fn from_utf8(bytes: Bytes) -> Result<Frame, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Frame(bytes))
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
