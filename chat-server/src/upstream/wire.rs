//! The OpenAI chat-completions wire format: the request body, a streamed chunk and a whole
//! answer. Only the fields used are read; everything else a provider adds is ignored.

use chat_core::completion::{Finished, UpstreamCall, UpstreamError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `POST …/chat/completions`.
#[derive(Serialize)]
pub(super) struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    /// Asked for when streaming, so the usage comes in a last chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> RequestBody<'a> {
    pub(super) fn new(call: &'a UpstreamCall) -> Self {
        Self {
            model: call.model.as_str(),
            messages: call
                .messages
                .iter()
                .map(|turn| WireMessage {
                    role: turn.role.as_str(),
                    content: &turn.content,
                })
                .collect(),
            temperature: call.temperature,
            max_tokens: call.max_tokens,
            stream: call.stream,
            stream_options: call.stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// One `data:` chunk of a streamed answer.
#[derive(Deserialize)]
struct Chunk {
    /// `null` in the usage chunk of some providers, absent in others.
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    #[serde(default)]
    usage: Option<Box<RawValue>>,
    /// Some providers report a failure inside a stream that began with 200.
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// What a stream has said so far.
#[derive(Default)]
pub(super) struct StreamState {
    pub(super) finished: Finished,
    /// Whether any chunk said how the reply ended.
    pub(super) saw_finish: bool,
}

impl StreamState {
    /// Reads one chunk's data, handing its text to `on_delta`.
    pub(super) fn chunk(
        &mut self,
        data: &str,
        on_delta: &mut (dyn FnMut(&str) -> Result<(), UpstreamError> + Send),
    ) -> Result<(), UpstreamError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
            UpstreamError::Malformed("a streamed chunk is not the expected JSON".into())
        })?;
        if chunk.error.is_some() {
            return Err(UpstreamError::Malformed(
                "the provider reported an error inside its stream".into(),
            ));
        }
        // Only the first choice is the reply; `n` is never asked for.
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                on_delta(&text)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.finished.finish_reason = Some(reason);
                self.saw_finish = true;
            }
        }
        if let Some(usage) = chunk.usage
            && usage.get() != "null"
        {
            self.finished.usage = Some(usage);
        }
        Ok(())
    }
}

/// A whole (not streamed) answer.
#[derive(Deserialize)]
struct Answer {
    choices: Vec<AnswerChoice>,
    #[serde(default)]
    usage: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct AnswerChoice {
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// Reads a whole answer, handing its text to `on_delta` once.
pub(super) fn answer(
    body: &[u8],
    on_delta: &mut (dyn FnMut(&str) -> Result<(), UpstreamError> + Send),
) -> Result<Finished, UpstreamError> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| UpstreamError::Malformed("the answer is not the expected JSON".into()))?;
    let choice = answer
        .choices
        .into_iter()
        .next()
        .ok_or(UpstreamError::Malformed("the answer has no choices".into()))?;
    if let Some(text) = choice.message.and_then(|m| m.content) {
        on_delta(&text)?;
    }
    Ok(Finished {
        finish_reason: choice.finish_reason,
        usage: answer.usage.filter(|u| u.get() != "null"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[&str]) -> (String, StreamState) {
        let mut text = String::new();
        let mut state = StreamState::default();
        for d in data {
            state
                .chunk(d, &mut |t: &str| {
                    text.push_str(t);
                    Ok(())
                })
                .unwrap();
        }
        (text, state)
    }

    #[test]
    fn chunks_with_null_choices_and_usage_are_read() {
        let (text, state) = collect(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
        ]);
        assert_eq!(text, "Hello");
        assert_eq!(state.finished.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            state.finished.usage.unwrap().get(),
            r#"{"prompt_tokens":3,"completion_tokens":2}"#
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let mut state = StreamState::default();
        let e = state.chunk("not json", &mut |_: &str| Ok(())).unwrap_err();
        assert!(matches!(e, UpstreamError::Malformed(_)));
        assert!(answer(b"{}", &mut |_: &str| Ok(())).is_err());
        assert!(answer(br#"{"choices":[]}"#, &mut |_: &str| Ok(())).is_err());
    }
}
