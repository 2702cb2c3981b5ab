#!/usr/bin/env python3
"""Regenerates the Envoy-detection test corpus under tests/corpus/.

Run from anywhere: `python3 tests/corpus/generate.py`. It rewrites tests/corpus/envoy/,
tests/corpus/project/ and tests/corpus/MANIFEST.tsv (README.md is written by hand), then checks
that every unified diff it can read (after undoing the transfer encodings) has hunk headers
whose line counts match the hunk bodies. `--check` only runs the check on the files on disk.

All code in the corpus is invented for the tests: it is written in the style of Envoy's tree
(and of an Istio-like service mesh for the project side) but copied from nowhere. Every
person is invented and uses an example.com/example.org address, except the few Envoy-authored
variants noted in the manifest.
"""

import base64
import email
import email.policy
import gzip
import hashlib
import io
import json
import os
import quopri
import re
import shutil
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.abspath(__file__))
GIT_VERSION = "2.43.0"

FILES = {}  # relative path -> bytes
MANIFEST = []  # (file, class, expect, note)


def add(rel, cls, expect, note, data):
    assert rel not in FILES, rel
    assert "\t" not in note and "\n" not in note, rel
    if isinstance(data, str):
        data = data.encode("utf-8")
    FILES[rel] = data
    MANIFEST.append((rel, cls, expect, note))


# --------------------------------------------------------------------------------------------
# Diff building blocks
# --------------------------------------------------------------------------------------------


def sha(seed, n=40):
    return hashlib.sha1(seed.encode("utf-8")).hexdigest()[:n]


class H:
    """One hunk. `text` has one line per diff line, each starting with ' ', '-' or '+'; an
    empty line stands for an empty context line (a single space in the output)."""

    def __init__(self, old_start, text, func=""):
        self.old_start = old_start
        self.func = func
        self.lines = []
        # Only the newline after the opening quotes and the one before the closing quotes are
        # dropped: an empty last line is a blank context line.
        text = text[1:] if text.startswith("\n") else text
        text = text[:-1] if text.endswith("\n") else text
        for ln in text.split("\n"):
            if ln == "":
                ln = " "
            assert ln[0] in " +-", repr(ln)
            self.lines.append(ln)

    @property
    def old_count(self):
        return sum(1 for l in self.lines if l[0] in " -")

    @property
    def new_count(self):
        return sum(1 for l in self.lines if l[0] in " +")

    @property
    def adds(self):
        return sum(1 for l in self.lines if l[0] == "+")

    @property
    def dels(self):
        return sum(1 for l in self.lines if l[0] == "-")


def trim_context(h, keep=3):
    """git shows 3 lines of context: drop any extra written before or after the changes."""
    first = next(i for i, l in enumerate(h.lines) if l[0] != " ")
    last = max(i for i, l in enumerate(h.lines) if l[0] != " ")
    cut = max(first - keep, 0)
    h.lines = h.lines[cut:last + 1 + keep]
    h.old_start += cut


def pad(fd, k, before=(), after=(), go=False, func=None):
    """Adds context lines (written without their marker) before and after hunk k of fd."""
    def mark(line):
        if go:
            stripped = line.lstrip(" ")
            n = (len(line) - len(stripped)) // 4
            line = "\t" * n + line[n * 4:]
        return " " + line
    h = fd.hunks[k]
    h.lines = [mark(l) for l in before] + h.lines + [mark(l) for l in after]
    h.old_start -= len(before)
    if func is not None:
        h.func = func


class FD:
    """The change to one file: its canonical path (as in the tree it comes from) and hunks."""

    def __init__(self, path, hunks, new=False):
        self.path = path
        self.hunks = hunks
        self.new = new
        if new:
            assert len(hunks) == 1 and all(l[0] == "+" for l in hunks[0].lines)
        else:
            for h in hunks:
                trim_context(h)

    def adds(self):
        return sum(h.adds for h in self.hunks)

    def dels(self):
        return sum(h.dels for h in self.hunks)

    def blobs(self):
        body = "\n".join("\n".join(h.lines) for h in self.hunks)
        old = "0000000" if self.new else sha("old" + self.path + body, 7)
        return old, sha("new" + self.path + body, 7)

    def moved(self, path):
        return FD(path, self.hunks, self.new)


def rng(start, count):
    return str(start) if count == 1 else f"{start},{count}"


def render_hunks(fd, func=True):
    """Hunk lines. `func=False` leaves out the function context, as plain `diff -u` does; git
    keeps at most 80 bytes of it."""
    out = []
    delta = 0
    for h in fd.hunks:
        if fd.new:
            head = f"@@ -0,0 +{rng(1, h.new_count)} @@"
        else:
            head = f"@@ -{rng(h.old_start, h.old_count)} +{rng(h.old_start + delta, h.new_count)} @@"
        if h.func and func:
            head += " " + h.func.encode("utf-8")[:80].decode("utf-8", "ignore")
        out.append(head)
        out.extend(h.lines)
        delta += h.new_count - h.old_count
    return out


def git_file(fd, src="a/", dst="b/", path=None, a=None, b=None):
    """`git diff` output for one file. `a`/`b` override the full (possibly quoted) names."""
    p = path if path is not None else fd.path
    a = a if a is not None else src + p
    b = b if b is not None else dst + p
    old, new = fd.blobs()
    out = [f"diff --git {a} {b}"]
    if fd.new:
        out += ["new file mode 100644", f"index {old}..{new}", "--- /dev/null", f"+++ {b}"]
    else:
        out += [f"index {old}..{new} 100644", f"--- {a}", f"+++ {b}"]
    return out + render_hunks(fd)


def plain_file(fd, old_label, new_label, old_ts=None, new_ts=None, cmd=None, func=False):
    """`diff -u`-style output for one file."""
    out = [cmd] if cmd else []
    out.append(f"--- {old_label}" + (f"\t{old_ts}" if old_ts else ""))
    out.append(f"+++ {new_label}" + (f"\t{new_ts}" if new_ts else ""))
    return out + render_hunks(fd, func)


def diffstat(entries, width=72):
    """git's --stat block for (name, adds, dels, new) entries, as format-patch prints it."""
    max_change = max(a + d for _, a, d, _ in entries)
    number_width = len(str(max_change))
    max_len = max(len(n) for n, _, _, _ in entries)
    graph_width = min(max_change, 40)
    name_width = max_len
    if name_width + number_width + 6 + graph_width > width:
        limit = width * 3 // 8 - number_width - 6
        if graph_width > limit:
            graph_width = max(limit, 6)
        if name_width > width - number_width - 6 - graph_width:
            name_width = width - number_width - 6 - graph_width
    out = []
    for name, a, d, _ in entries:
        shown = name
        if len(name) > name_width:
            tail = name[len(name) - name_width + 3:]
            slash = tail.find("/")
            shown = "..." + (tail[slash:] if slash >= 0 else tail)
        if max_change > graph_width:
            sa = (a * graph_width + max_change - 1) // max_change if a else 0
            sd = (d * graph_width + max_change - 1) // max_change if d else 0
        else:
            sa, sd = a, d
        out.append(f" {shown.ljust(name_width)} | {str(a + d).rjust(number_width)} {'+' * sa}{'-' * sd}".rstrip())
    files = len(entries)
    ins = sum(a for _, a, _, _ in entries)
    dels = sum(d for _, _, d, _ in entries)
    summary = f" {files} file{'s' if files != 1 else ''} changed"
    if ins:
        summary += f", {ins} insertion{'s' if ins != 1 else ''}(+)"
    if dels:
        summary += f", {dels} deletion{'s' if dels != 1 else ''}(-)"
    out.append(summary)
    for name, _, _, new in entries:
        if new:
            out.append(f" create mode 100644 {name}")
    return out


def fold_header(line, width=78):
    """Folds a long header on spaces, as git format-patch does for the subject."""
    out = []
    while len(line) > width and " " in line[1:width]:
        cut = line.rindex(" ", 1, width)
        out.append(line[:cut])
        line = " " + line[cut + 1:]
    out.append(line)
    return "\n".join(out)


def format_patch(fds, subject, author, date, body, src="a/", dst="b/", paths=None,
                 sha_seed=None, number=None, extra_headers=(), file_blocks=None):
    """One `git format-patch` message. `paths[i]` is the displayed path of `fds[i]` without
    prefix (defaults to its canonical path); `file_blocks` replaces the rendered diff."""
    paths = paths or [fd.path for fd in fds]
    commit = sha(sha_seed or (subject + date))
    tag = f"[PATCH {number[0]}/{number[1]}]" if number else "[PATCH]"
    out = [f"From {commit} Mon Sep 17 00:00:00 2001", f"From: {author}", f"Date: {date}",
           fold_header(f"Subject: {tag} {subject}")]
    out += list(extra_headers)
    out.append("")
    out += body.strip("\n").split("\n")
    out.append("---")
    out += diffstat([(p, fd.adds(), fd.dels(), fd.new) for p, fd in zip(paths, fds)])
    out.append("")
    if file_blocks is None:
        for p, fd in zip(paths, fds):
            out += git_file(fd, src, dst, p)
    else:
        out += file_blocks
    out += ["-- ", GIT_VERSION, "", ""]
    return "\n".join(out)


def git_diff(fds, src="a/", dst="b/", paths=None):
    paths = paths or [fd.path for fd in fds]
    out = []
    for p, fd in zip(paths, fds):
        out += git_file(fd, src, dst, p)
    return "\n".join(out) + "\n"


def lines(*blocks):
    out = []
    for b in blocks:
        out += b
    return "\n".join(out) + "\n"


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# --------------------------------------------------------------------------------------------
# Envoy-style fixes (invented), by canonical path in Envoy's tree. The hunks of the "path"
# fixes carry no Envoy marker in their changed lines (no `namespace Envoy`, no Envoy include,
# no ENVOY_ macro), so that a variant built from them is caught by its paths or not at all.
# --------------------------------------------------------------------------------------------

EF_UTIL = FD("source/common/http/utility.cc", [
    H(640, """
   absl::string_view xff_string(xff_header->value().getStringView());
   static constexpr absl::string_view separator(",");
   // Ignore the last num_to_skip addresses at the end of XFF.
   for (uint32_t i = 0; i < num_to_skip; i++) {
-    const std::string::size_type last_comma = xff_string.rfind(separator);
-    if (last_comma == std::string::npos) {
+    const absl::string_view::size_type last_comma = xff_string.rfind(separator);
+    if (last_comma == absl::string_view::npos) {
       return {nullptr, false};
     }
     xff_string = xff_string.substr(0, last_comma);
+    // "a,,b" must not let an empty element count as one of the trusted hops.
+    if (xff_string.empty() || xff_string.back() == ',') {
+      return {nullptr, false};
+    }
   }
   // The text after the last remaining comma, or the entire string if there are no commas,
   // is the requested IP address.
""", "Utility::getLastAddressFromXFF(const Http::RequestHeaderMap& request_headers,"),
    H(662, """
   xff_string = StringUtil::ltrim(xff_string);
   xff_string = StringUtil::rtrim(xff_string);
+  if (xff_string.empty()) {
+    return {nullptr, false};
+  }

   // This technically requires a copy because inet_pton takes a null terminated string. In
   // practice, we are working with a view at the end of the owning string, and could pass the
""", "Utility::getLastAddressFromXFF(const Http::RequestHeaderMap& request_headers,"),
])

EF_UTIL_TEST = FD("test/common/http/utility_test.cc", [
    H(1288, """
     EXPECT_EQ(fourth_address, ret.address_->ip()->addressAsString());
     EXPECT_FALSE(ret.allow_trusted_address_checks_);
   }
+  {
+    // An empty element must not be skipped as if it were a trusted hop.
+    TestRequestHeaderMapImpl request_headers{{"x-forwarded-for", "192.0.2.10,,198.51.100.1"}};
+    auto ret = Utility::getLastAddressFromXFF(request_headers, 1);
+    EXPECT_EQ(nullptr, ret.address_);
+  }
+  {
+    TestRequestHeaderMapImpl request_headers{{"x-forwarded-for", "192.0.2.10, "}};
+    auto ret = Utility::getLastAddressFromXFF(request_headers, 0);
+    EXPECT_EQ(nullptr, ret.address_);
+  }
 }

 TEST(HttpUtility, TestParseCookie) {
""", "TEST(HttpUtility, TestGetLastAddressFromXFF) {"),
])

EF_PATH = FD("source/common/http/path_utility.cc", [
    H(57, """
   ASSERT(headers.Path());
   const auto original_path = headers.getPathValue();
   const absl::string_view::size_type query_pos = original_path.find('?');
   const absl::string_view path = original_path.substr(0, query_pos);
   const absl::string_view query = absl::ClippedSubstr(original_path, query_pos);
+
+  // A percent-encoded separator must not reach the normalizer: "%2F" and "%5C" would be
+  // decoded after the route was matched and let a request slip past a prefix rule.
+  if (absl::StrContainsIgnoreCase(path, "%2f") || absl::StrContainsIgnoreCase(path, "%5c")) {
+    return false;
+  }

   auto normalized_path_opt = canonicalizePath(path);
   if (!normalized_path_opt.has_value()) {
     return false;
   }
-  auto& normalized_path = normalized_path_opt.value();
+  const std::string& normalized_path = normalized_path_opt.value();
+  if (normalized_path.empty() || normalized_path.front() != '/') {
+    return false;
+  }
   headers.setPath(absl::StrCat(normalized_path, query));
   return true;
 }
""", "bool PathUtil::canonicalPath(RequestHeaderMap& headers) {"),
    H(83, """
   const auto original_path = headers.getPathValue();
   // Only operate on path component in URL.
   const absl::string_view::size_type query_start = original_path.find('?');
   const absl::string_view path = original_path.substr(0, query_start);
+  if (path.empty()) {
+    return;
+  }
   const absl::string_view query = absl::ClippedSubstr(original_path, query_start);
   if (path.find("//") == absl::string_view::npos) {
     return;
""", "void PathUtil::mergeSlashes(RequestHeaderMap& headers) {"),
])

EF_PATH_TEST = FD("test/common/http/path_utility_test.cc", [
    H(118, """
     EXPECT_EQ(path_header.value().getStringView(), path_pair.second);
   }
 }
+
+// Percent-encoded separators are refused rather than normalized.
+TEST_F(PathUtilityTest, RejectsEncodedSeparators) {
+  for (const std::string path : {"/a%2fb", "/a%2Fb", "/a%5cb", "/a%5Cb", "/%2F..%2Fadmin"}) {
+    auto& path_header = pathHeaderEntry(path);
+    EXPECT_FALSE(PathUtil::canonicalPath(headers_));
+    EXPECT_EQ(path_header.value().getStringView(), path);
+  }
+}

 // These tests are copied from the NormalizePath tests above but adapted for
 // mergeSlashes.
""", "TEST_F(PathUtilityTest, NormalizeCasePath) {"),
])

EF_JWT = FD("source/extensions/filters/http/jwt_authn/authenticator.cc", [
    H(214, """
   if (jwks_data_ == nullptr) {
     doneWithStatus(Status::JwtUnknownIssuer);
     return;
   }

+  // A token without an "iss" claim must not be accepted by a provider that names an
+  // issuer: findByProvider() matched on the provider, not on the token.
+  if (jwt_->iss_.empty() && !jwks_data_->getJwtProvider().issuer().empty()) {
+    doneWithStatus(Status::JwtUnknownIssuer);
+    return;
+  }
+
   // Default is 60 seconds
   uint64_t clock_skew_seconds = ::google::jwt_verify::kClockSkewInSecond;
   if (jwks_data_->getJwtProvider().clock_skew_seconds() > 0) {
""", "void AuthenticatorImpl::startVerify() {"),
])


def _b64url(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


_TOKEN = [
    _b64url('{"alg":"RS256","typ":"JWT","kid":"test-key-1"}') + ".",
    _b64url('{"sub":"test@example.com","aud":"example_service","exp":4102444800}') + ".",
    _b64url("invented-signature-bytes-for-a-test-fixture-only"),
]

EF_JWT_TEST = FD("test/extensions/filters/http/jwt_authn/authenticator_test.cc", [
    H(402, """
   expectVerifyStatus(Status::JwtUnknownIssuer, headers);
 }

+// A token without "iss" is refused by a provider that requires an issuer.
+TEST_F(AuthenticatorTest, TestMissingIssRejectedWhenProviderHasIssuer) {
+  createAuthenticator();
+  EXPECT_CALL(*raw_fetcher_, fetch(_, _)).Times(0);
+
+  // Otherwise valid: signed with the provider's key and not expired.
+  Http::TestRequestHeaderMapImpl headers{
+      {"Authorization", "Bearer " + std::string(GoodTokenWithoutIss)}};
+  expectVerifyStatus(Status::JwtUnknownIssuer, headers);
+}
+
 // This test verifies that when a JWT is non-expiring without audience specified, JwtOk
 // is returned.
 TEST_F(AuthenticatorTest, TestNonExpiringJWT) {
""", "TEST_F(AuthenticatorTest, TestIssNotInJwksData) {"),
])

EF_JWT_TOKEN = FD("test/extensions/filters/http/jwt_authn/missing_iss_token.h", [H(0, f"""
+#pragma once
+
+namespace Envoy {{
+namespace Extensions {{
+namespace HttpFilters {{
+namespace JwtAuthn {{
+
+// Signed with the test provider's key, "exp" in 2100, and no "iss" claim.
+const char GoodTokenWithoutIss[] =
+    "{_TOKEN[0]}"
+    "{_TOKEN[1]}"
+    "{_TOKEN[2]}";
+
+}} // namespace JwtAuthn
+}} // namespace HttpFilters
+}} // namespace Extensions
+}} // namespace Envoy
""")], new=True)

EF_H2_CC = FD("source/common/http/http2/codec_impl.cc", [
    H(1302, """
   StreamImpl* stream = getStreamUnchecked(frame->hd.stream_id);
   RETURN_IF_ERROR(trackInboundFrames(frame->hd.stream_id, frame->hd.length, frame->hd.type,
                                      frame->hd.flags, frame->headers.padlen));
+  if (stream != nullptr) {
+    stream->continuation_frames_ = 0;
+  }
   if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
     if (stream != nullptr) {
       stream->decodeHeaders();
""", "Status ConnectionImpl::onBeginHeaders(const nghttp2_frame* frame) {"),
    H(1385, """
   if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
     RETURN_IF_ERROR(trackInboundFrames(frame->hd.stream_id, frame->hd.length, frame->hd.type,
                                        frame->hd.flags, 0));
   }
+  // A header block may be split over CONTINUATION frames without limit in the protocol;
+  // cap them per block so that a peer cannot keep a stream decoding headers forever.
+  if (frame->hd.type == NGHTTP2_CONTINUATION) {
+    StreamImpl* stream = getStreamUnchecked(frame->hd.stream_id);
+    if (stream != nullptr && ++stream->continuation_frames_ > max_continuation_frames_) {
+      stats_.continuation_flood_.inc();
+      return codecProtocolError("too many CONTINUATION frames");
+    }
+  }

   StreamImpl* stream = getStreamUnchecked(frame->hd.stream_id);
   if (!stream) {
""", "Status ConnectionImpl::onFrameReceived(const nghttp2_frame* frame) {"),
])

EF_H2_H = FD("source/common/http/http2/codec_impl.h", [
    H(297, """
     bool pending_send_buffer_high_watermark_called_ : 1;
     bool reset_due_to_messaging_error_ : 1;
     absl::string_view details_;
+    // CONTINUATION frames received for the header block being decoded.
+    uint32_t continuation_frames_{0};
+
     /**
      * Tracks buffering that may occur for a stream if it is waiting for the
      * stream_window_size_ bytes to be consumed before being able to send data.
""", "protected:"),
    H(612, """
   const uint32_t max_headers_kb_;
   const uint32_t max_headers_count_;
   uint32_t per_stream_buffer_limit_;
+  // Upper bound on CONTINUATION frames per header block.
+  const uint32_t max_continuation_frames_;
   bool allow_metadata_;
   const bool stream_error_on_invalid_http_messaging_;
   bool flood_detected_;
""", "protected:"),
])

EF_H2_STATS = FD("source/common/http/http2/codec_stats.h", [
    H(15, """
  */
 #define ALL_HTTP2_CODEC_STATS(COUNTER, GAUGE)                                                      \\
   COUNTER(dropped_headers_with_underscores)                                                        \\
+  COUNTER(continuation_flood)                                                                      \\
   COUNTER(goaway_sent)                                                                             \\
   COUNTER(header_overflow)                                                                         \\
   COUNTER(headers_cb_no_stream)                                                                    \\
""", "namespace Http2 {"),
])

EF_HDR = FD("source/common/http/header_utility.cc", [
    H(193, """
 }

 bool HeaderUtility::headerValueIsValid(const absl::string_view header_value) {
-  return nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(header_value.data()),
-                                    header_value.size()) != 0;
+  // RFC 9110 5.5: NUL, CR and LF are never valid in a field value, whatever the codec.
+  for (const char c : header_value) {
+    if (c == '\\0' || c == '\\r' || c == '\\n') {
+      return false;
+    }
+  }
+  return nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(header_value.data()),
+                                    header_value.size()) != 0;
 }

 bool HeaderUtility::headerNameIsValid(absl::string_view header_key) {
""", "bool HeaderUtility::authorityIsValid(const absl::string_view header_value) {"),
    H(210, """
     return nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(header_key.data()),
                                      header_key.size()) != 0;
   }
-  // For all other header use HTTP/1 semantics. The only difference from HTTP/2 is that
-  // uppercase characters are allowed.
-  return http2::adapter::HeaderSource::isValidHeaderName(header_key);
+  // For all other headers use HTTP/1 token semantics. An empty name is never valid.
+  if (header_key.empty()) {
+    return false;
+  }
+  return std::all_of(header_key.begin(), header_key.end(),
+                     [](const char c) { return isTokenChar(c); });
 }

 bool HeaderUtility::headerNameContainsUnderscore(const absl::string_view header_name) {
""", "bool HeaderUtility::headerNameIsValid(absl::string_view header_key) {"),
])

EF_RBAC = FD("source/extensions/filters/common/rbac/matchers.cc", [
    H(176, """
   return true;
 }

 bool HeaderMatcher::matches(const Network::Connection&, const Http::RequestHeaderMap& headers,
                             const StreamInfo::StreamInfo&) const {
-  return header_->matchesHeaders(headers);
+  // A repeated header is matched on each of its values, not only on the values joined with
+  // ",": a deny rule on "x-role: admin" must not be bypassed by sending "x-role" twice.
+  const auto values = headers.get(header_->name());
+  if (values.size() > 1) {
+    for (size_t i = 0; i < values.size(); ++i) {
+      if (header_->matchesValue(values[i]->value().getStringView())) {
+        return true;
+      }
+    }
+  }
+  return header_->matchesHeaders(headers);
 }

 bool IPMatcher::matches(const Network::Connection& connection, const Http::RequestHeaderMap&,
""", "bool AndMatcher::matches(const Network::Connection& connection,"),
])

EF_IFACE = FD("envoy/http/filter.h", [
    H(480, """
    */
   virtual void sendGoAwayAndClose() PURE;

+  /**
+   * Resets the stream when a filter finds that the decoded header block exceeds the
+   * configured limits. Filters must stop iteration after calling this.
+   * @param details the response code details recorded in the access log.
+   */
+  virtual void resetStreamOnHeaderOverflow(absl::string_view details) PURE;
+
   /**
    * Adds decoded metadata. This function can only be called in
    * StreamDecoderFilter::decodeHeaders/Data/Trailers(). Do not call in
""", "class StreamDecoderFilterCallbacks : public virtual StreamFilterCallbacks,"),
])

EF_PROTO = FD("api/envoy/config/route/v3/route_components.proto", [
    H(1120, """
   // :ref:`RetryPolicy <envoy_v3_api_msg_config.route.v3.RetryPolicy>`.
   google.protobuf.Any retry_policy_typed_config = 33;

+  // If true (the default), a request whose path contains a percent-encoded ``/`` or ``\\``
+  // is rejected with 400 before route matching, instead of being forwarded with the encoded
+  // bytes that an upstream may decode differently.
+  google.protobuf.BoolValue reject_encoded_separators = 44;
+
   // Specifies the maximum stream duration for this route.
   MaxStreamDuration max_stream_duration = 36;
""", "message RouteAction {"),
])

EF_BAZEL = FD("bazel/repository_locations.bzl", [
    H(468, """
     com_github_nghttp2_nghttp2 = dict(
         project_name = "Nghttp2",
         project_desc = "Implementation of HTTP/2 and its header compression algorithm HPACK in C",
         project_url = "https://nghttp2.org",
-        version = "1.61.0",
-        sha256 = "6fbd9d0d6c4a8c8f1f3b6e2a5d7c9e0b1a2f3c4d5e6f708192a3b4c5d6e7f809",
+        version = "1.62.1",
+        sha256 = "b2c4e6f8a0c2e4f6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4f6a8b0d2f4",
         strip_prefix = "nghttp2-{version}",
         urls = ["https://github.com/nghttp2/nghttp2/releases/download/v{version}/nghttp2-{version}.tar.gz"],
         use_category = ["controlplane", "dataplane_core"],
-        release_date = "2024-03-17",
+        release_date = "2024-04-04",
         cpe = "cpe:2.3:a:nghttp2:nghttp2:*",
         license = "MIT",
         license_url = "https://github.com/nghttp2/nghttp2/blob/v{version}/COPYING",
""", "REPOSITORY_LOCATIONS_SPEC = dict("),
])

EF_BUILD = FD("source/common/http/http2/BUILD", [
    H(24, """
     name = "codec_lib",
     srcs = ["codec_impl.cc"],
     hdrs = ["codec_impl.h"],
     deps = [
         ":codec_stats_lib",
+        ":continuation_limit_lib",
         ":metadata_decoder_lib",
         ":metadata_encoder_lib",
         ":protocol_constraints_lib",
""", "envoy_cc_library("),
    H(60, """
     ],
 )

+envoy_cc_library(
+    name = "continuation_limit_lib",
+    srcs = ["continuation_limit.cc"],
+    hdrs = ["continuation_limit.h"],
+    deps = [
+        "//envoy/http:codec_interface",
+        "//source/common/common:assert_lib",
+    ],
+)
+
 envoy_cc_library(
     name = "metadata_encoder_lib",
     srcs = ["metadata_encoder.cc"],
""", "envoy_cc_library("),
])

EF_ADMIN = FD("source/server/admin/admin.cc", [
    H(402, """
       found_handler = true;
       if (handler.mutates_server_state_) {
         const absl::string_view method = admin_stream.getRequestHeaders().getMethodValue();
         if (method != Http::Headers::get().MethodValues.Post) {
           response.add(fmt::format("Method {} not allowed, POST required.", method));
           return Http::Code::MethodNotAllowed;
         }
+        // Browsers send a simple cross-origin POST without a preflight: refuse requests that
+        // carry an Origin header, so that a web page cannot drive /quitquitquit or
+        // /runtime_modify through a browser on the same host.
+        if (!admin_stream.getRequestHeaders().get(Http::CustomHeaders::get().Origin).empty()) {
+          response.add("Cross-origin requests to mutating admin endpoints are not allowed.");
+          return Http::Code::Forbidden;
+        }
       }

       std::string path_and_query(path_and_query_view);
""", "Http::Code AdminImpl::runCallback(Http::ResponseHeaderMap& response_headers,"),
])

EF_EXTAUTHZ = FD("source/extensions/filters/http/ext_authz/ext_authz.cc", [
    H(412, """
     // headers_to_remove come from the authorization server; apply them after the additions
     // so that a server can replace a header by removing and re-adding it.
     for (const auto& header : response->headers_to_remove) {
-      request_headers_->remove(header);
+      // The authorization server must not drop pseudo-headers or Host: a request without
+      // :path or :authority is routed by whatever default the route table has.
+      if (header.get().empty() || header.get()[0] == ':' ||
+          header == Http::Headers::get().HostLegacy) {
+        continue;
+      }
+      request_headers_->remove(header);
     }

     if (!response->query_parameters_to_set.empty() ||
""", "void Filter::onComplete(Filters::Common::ExtAuthz::ResponsePtr&& response) {"),
])

EF_TLS = FD("source/extensions/transport_sockets/tls/cert_validator/default_validator.cc", [
    H(330, """
   size_t pattern_len = lower_case_pattern.length();
   if (pattern_len > 1 && lower_case_pattern[0] == '*' && lower_case_pattern[1] == '.') {
     if (lower_case_dns_name.length() > pattern_len - 1) {
       const size_t off = lower_case_dns_name.length() - pattern_len + 1;
-      return lower_case_dns_name.substr(off, pattern_len - 1) == lower_case_pattern.substr(1);
+      // The wildcard stands for exactly one label: "*.example.com" must not match
+      // "a.b.example.com".
+      return lower_case_dns_name.find('.') == off &&
+             lower_case_dns_name.substr(off, pattern_len - 1) == lower_case_pattern.substr(1);
     }
   }

""", "bool DefaultCertValidator::dnsNameMatch(absl::string_view dns_name, absl::string_view pattern) {"),
])

EF_TLS_TEST = FD("test/extensions/transport_sockets/tls/cert_validator/default_validator_test.cc", [
    H(58, """
   EXPECT_FALSE(DefaultCertValidator::dnsNameMatch("example.com", "*.example.com"));
   EXPECT_FALSE(DefaultCertValidator::dnsNameMatch("", "*example.com"));
   EXPECT_FALSE(DefaultCertValidator::dnsNameMatch("example.com", ""));
+  EXPECT_FALSE(DefaultCertValidator::dnsNameMatch("a.b.example.com", "*.example.com"));
+  EXPECT_FALSE(DefaultCertValidator::dnsNameMatch("x.y.z.example.com", "*.example.com"));
 }

 TEST(DefaultCertValidatorTest, TestCertificateVerificationWithSANMatcher) {
""", "TEST(DefaultCertValidatorTest, TestDnsNameMatching) {"),
])

EF_OAUTH = FD("source/extensions/filters/http/oauth2/filter.cc", [
    H(520, """
     sendUnauthorizedResponse();
     return Http::FilterHeadersStatus::StopIteration;
   }

-  // Return 401 unauthorized if the state query parameter does not contain the original request URL.
-  original_request_url_ = state_url;
+  // The state carries the URL to return to after login. It must be a URL on this host;
+  // otherwise the callback is an open redirect that carries the fresh session away.
+  Http::Utility::Url state_url_parsed;
+  if (!state_url_parsed.initialize(state_url, false) ||
+      state_url_parsed.hostAndPort() != headers.getHostValue()) {
+    sendUnauthorizedResponse();
+    return Http::FilterHeadersStatus::StopIteration;
+  }
+  original_request_url_ = state_url;

   Formatter::FormatterImpl formatter(config_->redirectUri());
   const auto redirect_uri =
""", "Http::FilterHeadersStatus OAuth2Filter::decodeHeaders(Http::RequestHeaderMap& headers, bool) {"),
])

EF_ROUTER = FD("source/common/router/config_impl.cc", [
    H(1015, """
   if (!new_path.has_value()) {
     return;
   }
+  // A rewrite whose result does not start with a single "/" (a regex substitution that
+  // produced "//evil.example.com/x" or "x/y") would be forwarded as a network-path or
+  // relative reference; keep the original path instead.
+  if (new_path->empty() || new_path->front() != '/' || absl::StartsWith(*new_path, "//")) {
+    return;
+  }

   // Rewrite the path before saving it as the original so that the logs show the old path.
   headers.setPath(new_path.value());
""", "void RouteEntryImplBase::finalizePathHeader(Http::RequestHeaderMap& headers,"),
])

EF_HCM = FD("source/common/http/conn_manager_impl.cc", [
    H(352, """
   if (stream.max_stream_duration_timer_) {
     stream.max_stream_duration_timer_->disableTimer();
     stream.max_stream_duration_timer_ = nullptr;
   }
+  if (!stream.state_.is_internally_destroyed_) {
+    // A stream reset by the peer before its response completed counts against the
+    // premature-reset budget: a client that opens and resets streams in a loop keeps a
+    // worker busy without ever reading a response.
+    ++closed_non_internally_destroyed_requests_;
+    if (isPrematureRstStream(stream)) {
+      ++number_premature_stream_resets_;
+    }
+  }

   stream.completeRequest();
   stream.filter_manager_.onStreamComplete();
""", "void ConnectionManagerImpl::doDeferredStreamDestroy(ActiveStream& stream) {"),
    H(431, """
   }
 }

+void ConnectionManagerImpl::maybeDrainDueToPrematureResets() {
+  if (closed_non_internally_destroyed_requests_ < kMinimumRequestsForPrematureResetCheck) {
+    return;
+  }
+  if (number_premature_stream_resets_ * 2 < closed_non_internally_destroyed_requests_) {
+    return;
+  }
+  if (read_callbacks_->connection().state() == Network::Connection::State::Open) {
+    stats_.named_.downstream_rq_too_many_premature_resets_.inc();
+    doConnectionClose(Network::ConnectionCloseType::Abort, absl::nullopt,
+                      "too_many_premature_resets");
+  }
+}
+
 void ConnectionManagerImpl::onGoAway(GoAwayErrorCode) {
   // Currently we do nothing with remote go away frames. In the future we can decide to no longer
   // push resources if applicable.
""", "void ConnectionManagerImpl::resetAllStreams(absl::optional<StreamInfo::CoreResponseFlag> response_flag,"),
])

EF_GOLANG = FD("contrib/golang/filters/http/source/golang_filter.cc", [
    H(1180, """
   if (!state.isProcessingInGo()) {
     return CAPIStatus::CAPINotInGo;
   }
+  // The Go side may still hold the filter after the stream was destroyed; refuse to read
+  // headers once it has been torn down instead of touching freed memory.
+  if (has_destroyed_) {
+    return CAPIStatus::CAPIFilterIsDestroy;
+  }
   auto m = state.isProcessingHeader() ? headers_ : nullptr;
   if (m == nullptr) {
     return CAPIStatus::CAPIInvalidPhase;
""", "CAPIStatus Filter::getHeader(ProcessorState& state, absl::string_view key, uint64_t* value_data,"),
])

EF_BZL_MACRO = FD("bazel/envoy_build_system.bzl", [
    H(88, """
 def envoy_cc_fuzz_test(name, corpus, dictionaries = [], deps = [], tags = [], **kwargs):
     _envoy_cc_fuzz_test(name, corpus, dictionaries, deps, tags, **kwargs)

+# Header-limit regressions are built with the hardened allocator so that an overflow in a
+# codec test aborts instead of reading neighbouring memory.
+def envoy_cc_hardened_test(name, deps = [], copts = [], **kwargs):
+    envoy_cc_test(name = name, deps = deps, copts = copts + ["-D_FORTIFY_SOURCE=3"], **kwargs)
+
 def envoy_cc_test_library(name, deps = [], **kwargs):
     _envoy_cc_test_library(name, deps = deps, **kwargs)
""", ""),
])

# --------------------------------------------------------------------------------------------
# Envoy code carried in the changed lines, for files whose names say nothing (content-*)
# --------------------------------------------------------------------------------------------

CT_NAMESPACE = FD("src/proxy/fix.cc", [H(0, """
+// Limits the CONTINUATION frames accepted for one header block.
+
+#include <cstdint>
+
+#include "absl/status/status.h"
+
+namespace Envoy {
+namespace Http {
+namespace Http2 {
+
+absl::Status ContinuationLimit::onFrame(uint8_t type, uint8_t flags) {
+  if (type != kContinuationFrameType) {
+    frames_ = 0;
+    return absl::OkStatus();
+  }
+  if (++frames_ > max_frames_) {
+    return absl::ResourceExhaustedError("too many CONTINUATION frames in one header block");
+  }
+  if ((flags & kEndHeadersFlag) != 0) {
+    frames_ = 0;
+  }
+  return absl::OkStatus();
+}
+
+} // namespace Http2
+} // namespace Http
+} // namespace Envoy
""")], new=True)

CT_QUALIFIERS = FD("lib/h2/limits.h", [H(8, """
 #include "absl/strings/string_view.h"

 namespace h2 {

 struct StreamLimits {
   uint32_t max_headers_count{100};
   uint32_t max_headers_kb{60};
+  uint32_t max_continuation_frames{32};
 };

-bool headersWithinLimits(const Envoy::Http::RequestHeaderMap& headers, const StreamLimits& limits);
+bool headersWithinLimits(const Envoy::Http::RequestHeaderMap& headers, const StreamLimits& limits,
+                         uint32_t continuation_frames);
+
+// Resets the stream with a protocol error when a header block arrives in more
+// CONTINUATION frames than the limit allows.
+void resetOnContinuationFlood(Envoy::Http::StreamEncoder& encoder,
+                              Envoy::Http::StreamResetReason reason, const StreamLimits& limits);

 } // namespace h2
""")])

CT_INCLUDE = FD("src/filters/h2_guard.cc", [
    H(1, """
 #include "h2_guard.h"

+#include "envoy/http/codec.h"
+#include "envoy/http/header_map.h"
+
 #include "absl/strings/match.h"
 #include "absl/strings/str_cat.h"

"""),
    H(41, """
 bool H2Guard::allowHeaderBlock(const Http::RequestHeaderMap& headers) const {
   if (headers.byteSize() > max_headers_kb_ * 1024) {
     return false;
   }
-  return true;
+  // A header block must not exceed the count limit either, whatever its size.
+  return headers.size() <= max_headers_count_;
 }
""", "namespace guard {"),
])

CT_SOURCE_INCLUDE = FD("proxy/codec.cc", [
    H(1, """
 #include "proxy/codec.h"

+#include "source/common/common/assert.h"
+#include "source/common/http/http2/codec_stats.h"
+
 #include <cstdint>
 #include <string>

"""),
    H(212, """
 int Codec::onContinuation(const Frame& frame) {
   Stream* stream = findStream(frame.stream_id);
+  ASSERT(stream == nullptr || stream->id() == frame.stream_id);
   if (stream == nullptr) {
     return 0;
   }
-  return stream->appendHeaderBlock(frame.payload);
+  if (++stream->continuation_frames > max_continuation_frames_) {
+    stats_.continuation_flood_.inc();
+    return kProtocolError;
+  }
+  return stream->appendHeaderBlock(frame.payload);
 }
""", "namespace proxy {"),
])

CT_BZL = FD("build/external_deps.bzl", [H(212, """
         license = "Apache-2.0",
         license_url = "https://github.com/google/jwt_verify_lib/blob/{version}/LICENSE",
     ),
+    com_github_example_jose_header_checks = dict(
+        project_name = "jose-header-checks",
+        project_desc = "Strict JOSE header parsing used by the JWT authentication filter",
+        project_url = "https://jose-checks.example.org",
+        version = "0.4.2",
+        sha256 = "4e1d9c7b2a6f80e3d5c71b9a0f2e4d6c8b1a3f5e7d9c0b2a4f6e8d1c3b5a7f90",
+        strip_prefix = "jose-header-checks-{version}",
+        urls = ["https://jose-checks.example.org/releases/jose-header-checks-{version}.tar.gz"],
+        use_category = ["dataplane_ext"],
+        extensions = ["envoy.filters.http.jwt_authn"],
+        release_date = "2024-05-21",
+        cpe = "N/A",
+        license = "Apache-2.0",
+        license_url = "https://jose-checks.example.org/LICENSE",
+    ),
     com_github_nghttp2_nghttp2 = dict(
         project_name = "Nghttp2",
""", "DEPENDENCY_SPECS = dict(")])

CT_BUILD = FD("native/h2/BUILD", [H(0, """
+load(
+    "//bazel:envoy_build_system.bzl",
+    "envoy_cc_library",
+    "envoy_package",
+)
+
+licenses(["notice"])  # Apache 2
+
+envoy_package()
+
+envoy_cc_library(
+    name = "continuation_limit_lib",
+    srcs = ["continuation_limit.cc"],
+    hdrs = ["continuation_limit.h"],
+    deps = [
+        "//envoy/http:codec_interface",
+        "//source/common/common:assert_lib",
+        "@com_google_absl//absl/status",
+    ],
+)
""")], new=True)

CT_PROTO_PKG = FD("proto/path_sanitization.proto", [H(0, """
+syntax = "proto3";
+
+package envoy.config.route.v3;
+
+import "google/protobuf/wrappers.proto";
+
+import "udpa/annotations/status.proto";
+import "validate/validate.proto";
+
+option java_package = "io.envoyproxy.envoy.config.route.v3";
+option java_outer_classname = "PathSanitizationProto";
+option java_multiple_files = true;
+option (udpa.annotations.file_status).package_version_status = ACTIVE;
+
+// [#protodoc-title: Path sanitization]
+
+message PathSanitization {
+  // Reject requests whose path contains a percent-encoded "/" or "\\".
+  google.protobuf.BoolValue reject_encoded_separators = 1;
+
+  // Largest number of path segments accepted before normalization.
+  uint32 max_segments = 2 [(validate.rules).uint32 = {lte: 1024 gte: 1}];
+}
""")], new=True)

CT_PROTO_IMPORT = FD("schema/authz.proto", [
    H(3, """
 package authz;

 import "google/protobuf/duration.proto";
+import "envoy/config/core/v3/base.proto";
+import "envoy/type/matcher/v3/string.proto";

 import "validate/validate.proto";

"""),
    H(96, """
   // Clears the route cache after the check, so that headers it set can select a route.
   bool clear_route_cache = 17;
+
+  // Headers the authorization server may not remove from the request.
+  repeated envoy.type.matcher.v3.StringMatcher protected_headers = 18;
+
+  // Sent to the authorization server with every check request.
+  repeated envoy.config.core.v3.HeaderValue extra_check_headers = 19;
 }
""", "message AuthzSettings {"),
])

CT_LOG = FD("gateway/listener.cc", [H(144, """
   if (resets_ < min_requests_for_check_) {
     return;
   }
-  if (premature_resets_ * 2 >= resets_) {
-    connection_.close(CloseType::Abort);
-  }
+  if (premature_resets_ * 2 < resets_) {
+    ENVOY_LOG(trace, "{} premature resets out of {} requests, below the limit", premature_resets_,
+              resets_);
+    return;
+  }
+  ENVOY_LOG(debug, "closing connection: {} premature stream resets out of {} requests",
+            premature_resets_, resets_);
+  ENVOY_CONN_LOG(debug, "too many premature resets", connection_);
+  connection_.close(CloseType::Abort);
 }
""", "void Listener::checkPrematureResets() {")])

CT_BUG = FD("core/conn_pool.cc", [H(318, """
 void ConnPool::onStreamReset(ActiveClient& client, StreamResetReason reason) {
   client.remaining_streams_--;
-  client.active_streams_--;
+  ENVOY_BUG(client.active_streams_ > 0, "stream reset on a client with no active stream");
+  if (client.active_streams_ > 0) {
+    client.active_streams_--;
+  }
+  ENVOY_BUG(client.active_streams_ <= client.concurrent_stream_limit_,
+            "stream accounting out of sync after reset");
   if (reason == StreamResetReason::ConnectionTermination) {
     drainClient(client);
   }
""", "namespace pool {")])

CT_NESTED_NS = FD("src/net/frame_guard.cc", [
    H(1, """
 #include "frame_guard.h"

-namespace net {
+namespace Envoy::Http::Http2 {

 FrameGuard::FrameGuard(uint32_t max_continuation_frames)
     : max_continuation_frames_(max_continuation_frames) {}
"""),
    H(18, """
 bool FrameGuard::onContinuation(uint32_t stream_id) {
-  return true;
+  // Header blocks split over too many CONTINUATION frames are refused.
+  return ++continuation_frames_[stream_id] <= max_continuation_frames_;
 }

-} // namespace net
+} // namespace Envoy::Http::Http2
""", "FrameGuard::FrameGuard(uint32_t max_continuation_frames)"),
])

CT_REMOVED_ONLY = FD("src/http/xff.cc", [
    H(22, """
 #include "absl/strings/string_view.h"

-Envoy::Http::Utility::GetLastAddressFromXffInfo
-Envoy::Http::Utility::getLastAddressFromXFF(const Envoy::Http::RequestHeaderMap& request_headers,
-                                             uint32_t num_to_skip) {
+XffResult lastAddressFromXff(const HeaderMap& request_headers, uint32_t num_to_skip) {
   const auto xff_header = request_headers.ForwardedFor();
   if (xff_header == nullptr) {
     return {nullptr, false};
"""),
    H(36, """
       return {nullptr, false};
     }
     xff_string = xff_string.substr(0, last_comma);
+    if (xff_string.empty() || xff_string.back() == ',') {
+      return {nullptr, false};
+    }
   }
""", "XffResult lastAddressFromXff(const HeaderMap& request_headers, uint32_t num_to_skip) {"),
])

CT_TEST = FD("tests/h2_limits_test.cc", [H(0, """
+#include "test/mocks/http/mocks.h"
+#include "test/test_common/utility.h"
+
+#include "gtest/gtest.h"
+
+#include "h2/continuation_limit.h"
+
+using Envoy::Http::TestRequestHeaderMapImpl;
+using Envoy::Http::MockStreamDecoder;
+using testing::NiceMock;
+
+namespace h2 {
+namespace {
+
+TEST(ContinuationLimitTest, ResetsAfterTooManyFrames) {
+  NiceMock<MockStreamDecoder> decoder;
+  ContinuationLimit limit(/*max_frames=*/3);
+  for (int i = 0; i < 3; ++i) {
+    EXPECT_TRUE(limit.onFrame(kContinuationFrameType, 0).ok());
+  }
+  EXPECT_FALSE(limit.onFrame(kContinuationFrameType, 0).ok());
+}
+
+TEST(ContinuationLimitTest, EndHeadersStartsANewBlock) {
+  TestRequestHeaderMapImpl headers{{":method", "GET"}, {":path", "/"}};
+  ContinuationLimit limit(/*max_frames=*/1);
+  EXPECT_TRUE(limit.onFrame(kContinuationFrameType, kEndHeadersFlag).ok());
+  EXPECT_TRUE(limit.onFrame(kContinuationFrameType, 0).ok());
+}
+
+} // namespace
+} // namespace h2
""")], new=True)

CT_USING = FD("fix.cc", [H(9, """
 #include "filter_config.h"

+using Envoy::Http::LowerCaseString;
+using Envoy::Http::RequestHeaderMap;
+
 namespace authz {

 void Filter::removeHeaders(RequestHeaderMap& headers, const std::vector<std::string>& names) {
   for (const auto& name : names) {
-    headers.remove(Http::LowerCaseString(name));
+    const LowerCaseString key(name);
+    if (key.get().empty() || key.get()[0] == ':' || key.get() == "host") {
+      ENVOY_STREAM_LOG(debug, "refusing to remove protected header {}", *callbacks_, name);
+      continue;
+    }
+    headers.remove(key);
   }
 }
""")])

CT_ANGLE = FD("plugins/authz/filter.h", [H(1, """
 #pragma once

+#include <envoy/http/filter.h>
+#include <envoy/stream_info/stream_info.h>
+
 #include <memory>
 #include <string>

-class AuthzFilter {
+class AuthzFilter : public Http::PassThroughDecoderFilter {
 public:
   explicit AuthzFilter(std::shared_ptr<const AuthzConfig> config) : config_(std::move(config)) {}

-  bool decodeHeaders(HeaderMap& headers);
+  Http::FilterHeadersStatus decodeHeaders(Http::RequestHeaderMap& headers,
+                                          bool end_stream) override;
""")])


# Context lines so that every hunk shows 3 lines of context before and after its changes,
# as git does, except at the start or end of a file.
pad(EF_UTIL, 1, before=["  // Ignore the whitespace, since they are allowed in HTTP lists (see RFC7239#section-7.1)."])
pad(EF_PROTO, 0, after=[""])
pad(EF_BZL_MACRO, 0, after=[""])
pad(CT_INCLUDE, 1, after=["", "} // namespace guard"])
pad(CT_SOURCE_INCLUDE, 1, before=[""], after=["", "int Codec::onData(const Frame& frame) {"])
pad(CT_BZL, 0, after=['        project_desc = "Implementation of HTTP/2 and its header compression algorithm HPACK in C",'])
pad(CT_PROTO_IMPORT, 1, before=[""], after=["", "// Per-route overrides of AuthzSettings."])
pad(CT_LOG, 0, after=["", "void Listener::onStreamReset(bool premature) {"])
pad(CT_BUG, 0, before=[""])
pad(CT_NESTED_NS, 1, before=["void FrameGuard::onEndHeaders(uint32_t stream_id) { continuation_frames_.erase(stream_id); }", ""])
pad(CT_REMOVED_ONLY, 0, before=['#include "absl/strings/ascii.h"'])
pad(CT_REMOVED_ONLY, 1, after=["  // The text after the last remaining comma is the requested address.",
           "  const absl::string_view::size_type last_comma = xff_string.rfind(',');"])
pad(CT_USING, 0, before=['#include "filter.h"'], after=[""])
pad(CT_ANGLE, 0, after=["", "private:", "  const std::shared_ptr<const AuthzConfig> config_;"])


# --------------------------------------------------------------------------------------------
# People (invented) and Envoy-style commit messages
# --------------------------------------------------------------------------------------------

MARTA = "Marta Kowalczyk <marta.kowalczyk@example.com>"
DEV = "Dev Raman <dev.raman@example.org>"
LUCIA = "=?UTF-8?q?Luc=C3=ADa=20Ferreira?= <lucia.ferreira@example.com>"
TOMASZ = "Tomasz Wielgosz <t.wielgosz@example.com>"
PRIYA = "Priya Natarajan <priya.natarajan@example.com>"
KENJI = "Kenji Watanabe <kenji.w@example.org>"
AMARA = "Amara Okafor <amara.okafor@example.com>"
JONAS = "Jonas Berglund <jonas.berglund@example.org>"
RM = "Rel Manager <rm@example.org>"
SAM = "Sam Whitfield <sam.whitfield@example.com>"
# The only Envoy-domain addresses in the corpus (used in 2 files, see the manifest).
OLU_ENVOY = "Olu Adebayo <olu.adebayo@envoyproxy.io>"


def envoy_body(desc, signer, risk="Low", testing="unit tests", notes="n/a"):
    name = signer.split(" <")[0]
    if name.startswith("=?"):
        name = "Lucia Ferreira"
        signer = "Lucia Ferreira <lucia.ferreira@example.com>"
    return f"""{desc}

Risk Level: {risk}
Testing: {testing}
Docs Changes: n/a
Release Notes: {notes}

Signed-off-by: {signer}
"""


TS_OLD = "2024-06-03 14:02:11.000000000 +0200"
TS_NEW = "2024-06-04 09:17:45.000000000 +0200"


def plain_files(fds, old_of, new_of, cmd_of=None, ts=True):
    out = []
    for fd in fds:
        out += plain_file(fd, old_of(fd.path), new_of(fd.path), TS_OLD if ts else None,
                          TS_NEW if ts else None, cmd_of(fd.path) if cmd_of else None)
    return "\n".join(out) + "\n"


def strip_api(p):
    return p[len("api/"):] if p.startswith("api/") else p


# --------------------------------------------------------------------------------------------
# envoy/: mislabelled Envoy fixes
# --------------------------------------------------------------------------------------------

D1 = "Mon, 3 Jun 2024 16:40:11 +0200"
D2 = "Tue, 4 Jun 2024 09:12:54 +0200"
D3 = "Wed, 5 Jun 2024 11:03:27 +0100"
D4 = "Thu, 6 Jun 2024 18:22:09 -0700"
D5 = "Fri, 7 Jun 2024 07:45:30 +0900"
D6 = "Mon, 10 Jun 2024 13:58:02 +0000"


def build_depth():
    add("envoy/depth-01-release-folders.patch", "depth", "caught",
        "diff -ruN between unpacked release folders envoy-1.31.2/ and envoy-1.31.3/",
        plain_files([EF_UTIL, EF_UTIL_TEST], lambda p: f"envoy-1.31.2/{p}",
                    lambda p: f"envoy-1.31.3/{p}",
                    cmd_of=lambda p: f"diff -ruN envoy-1.31.2/{p} envoy-1.31.3/{p}"))

    add("envoy/depth-02-dot-slash-prefix.patch", "depth", "caught",
        "git diff --src-prefix=./ --dst-prefix=./ so every path starts with ./source/",
        git_diff([EF_HDR], src="./", dst="./"))

    add("envoy/depth-03-old-new-prefix.patch", "depth", "caught",
        "git format-patch --src-prefix=old/ --dst-prefix=new/ with an envoyproxy.io sign-off",
        format_patch([EF_JWT, EF_JWT_TEST], "jwt_authn: refuse tokens without iss for issuer-bound providers",
                     MARTA, D1, envoy_body(
                         "A provider with an issuer configured accepted a token that carried no\n"
                         "\"iss\" claim at all, because the provider was selected by the header\n"
                         "and not by the claim.", OLU_ENVOY), src="old/", dst="new/"))

    add("envoy/depth-04-orig-suffix-no-prefix.diff", "depth", "caught",
        "diff -u of file.cc.orig against file.cc with no directory prefix at all",
        plain_files([EF_PATH, EF_PATH_TEST], lambda p: p + ".orig", lambda p: p,
                    cmd_of=lambda p: f"diff -u {p}.orig {p}"))

    add("envoy/depth-05-no-prefix.patch", "depth", "caught",
        "git format-patch --no-prefix: paths start at source/ with no a/ or b/",
        format_patch([EF_H2_CC, EF_H2_H, EF_H2_STATS], "http2: cap CONTINUATION frames per header block",
                     DEV, D2, envoy_body(
                         "A peer could send one HEADERS frame followed by an unbounded number of\n"
                         "CONTINUATION frames, keeping the stream in header decoding and the\n"
                         "worker busy. Count them per header block and reset the connection\n"
                         "with a protocol error above the limit.", DEV, risk="Medium"),
                     src="", dst=""))

    add("envoy/depth-06-relative-to-source.patch", "depth", "caught",
        "git diff --relative=source so paths start at common/router/",
        format_patch([EF_ROUTER], "router: keep the original path when a rewrite leaves the origin",
                     KENJI, D3, envoy_body(
                         "A regex rewrite could turn /x into //host/x, which upstreams read as a\n"
                         "network-path reference.", KENJI),
                     paths=[EF_ROUTER.path[len("source/"):]]))

    add("envoy/depth-07-inside-source-plain.diff", "depth", "caught",
        "diff -u run from inside source/ so paths start at extensions/filters/http/",
        plain_files([EF_EXTAUTHZ], lambda p: p[len("source/"):] + ".orig",
                    lambda p: p[len("source/"):],
                    cmd_of=lambda p: f"diff -u {p[len('source/'):]}.orig {p[len('source/'):]}"))

    add("envoy/depth-08-deep-relative-prefix.patch", "depth", "caught",
        "format-patch from a superproject where the tree sits at work/build/envoy/",
        format_patch([EF_ADMIN], "admin: refuse cross-origin requests to mutating endpoints",
                     AMARA, D4, envoy_body(
                         "A page open in a browser on the proxy's host could POST to the admin\n"
                         "listener without a preflight.", AMARA),
                     paths=["work/build/envoy/" + EF_ADMIN.path]))

    add("envoy/depth-09-absolute-paths.diff", "depth", "caught",
        "diff -u with absolute paths under /home/jdoe/src/envoy/",
        plain_files([EF_TLS, EF_TLS_TEST],
                    lambda p: f"/home/jdoe/src/envoy/{p}.orig",
                    lambda p: f"/home/jdoe/src/envoy/{p}",
                    cmd_of=lambda p: f"diff -u /home/jdoe/src/envoy/{p}.orig /home/jdoe/src/envoy/{p}"))

    add("envoy/depth-10-relative-to-extensions.patch", "depth", "caught",
        "git diff --relative=source/extensions so the path is filters/http/oauth2/filter.cc",
        git_diff([EF_OAUTH], paths=[EF_OAUTH.path[len("source/extensions/"):]]))

    add("envoy/depth-11-mnemonic-prefix.patch", "depth", "caught",
        "diff.mnemonicPrefix output with i/ and w/ instead of a/ and b/",
        git_diff([EF_RBAC], src="i/", dst="w/"))

    svn = "\n".join(["Index: " + EF_HCM.path, "=" * 67])
    add("envoy/depth-12-svn-index-style.diff", "depth", "caught",
        "svn-style diff with an Index: line and (revision)/(working copy) labels",
        lines(plain_file(EF_HCM, EF_HCM.path, EF_HCM.path, "(revision 48213)", "(working copy)", svn)))

    dep3 = """Description: Reject percent-encoded path separators before route matching
 Adds RouteAction.reject_encoded_separators, on by default.
Author: Kenji Watanabe <kenji.w@example.org>
Forwarded: not-needed
Last-Update: 2024-06-05
---
"""
    add("envoy/depth-13-quilt-orig-folder.diff", "depth", "caught",
        "quilt/DEP-3 patch between envoy-1.30.4.orig/ and envoy-1.30.4/ touching api/envoy/",
        dep3 + plain_files([EF_PROTO], lambda p: f"envoy-1.30.4.orig/{p}", lambda p: f"envoy-1.30.4/{p}"))

    add("envoy/depth-14-two-checkouts.diff", "depth", "caught",
        "diff -ruN between two checkouts named envoy/ and envoy.new/ touching bazel/",
        plain_files([EF_BAZEL, EF_BZL_MACRO], lambda p: f"envoy/{p}", lambda p: f"envoy.new/{p}",
                    cmd_of=lambda p: f"diff -ruN envoy/{p} envoy.new/{p}"))


def build_vendored():
    add("envoy/vendored-01-vendor-envoy.patch", "vendored", "caught",
        "Envoy tree vendored under vendor/envoy/",
        format_patch([EF_HDR], "vendor/envoy: reject NUL, CR and LF in header values", TOMASZ, D1,
                     envoy_body("Carry the header value check in our vendored copy.", TOMASZ),
                     paths=["vendor/envoy/" + EF_HDR.path]))

    jwt = [EF_JWT, EF_JWT_TEST, EF_JWT_TOKEN]
    add("envoy/vendored-02-third-party-proxy.patch", "vendored", "caught",
        "Envoy tree vendored under third_party/proxy/ with source/, test/ and a new test header",
        format_patch(jwt, "third_party/proxy: jwt_authn refuses tokens without iss", PRIYA, D2,
                     envoy_body("Sync the issuer check into the proxy we ship.", PRIYA),
                     paths=["third_party/proxy/" + fd.path for fd in jwt]))

    add("envoy/vendored-03-deps-public-header.patch", "vendored", "caught",
        "Envoy public interface header under deps/proxy-core/envoy/http/filter.h",
        git_diff([EF_IFACE], paths=["deps/proxy-core/" + EF_IFACE.path]))

    add("envoy/vendored-04-bazel-external-api.patch", "vendored", "caught",
        "Envoy API proto as Bazel lays it out: external/envoy_api/envoy/config/route/v3/",
        git_diff([EF_PROTO], paths=["external/envoy_api/" + strip_api(EF_PROTO.path)]))

    add("envoy/vendored-05-fork-folder.patch", "vendored", "caught",
        "Envoy tree copied into a folder named envoy-fork/",
        format_patch([EF_ADMIN], "envoy-fork: admin refuses cross-origin POSTs", SAM, D3,
                     envoy_body("Pick the admin hardening into our fork.", SAM),
                     paths=["envoy-fork/" + EF_ADMIN.path]))

    add("envoy/vendored-06-third-party-bazel.patch", "vendored", "caught",
        "Envoy's bazel/repository_locations.bzl under third_party/envoy/",
        git_diff([EF_BAZEL], paths=["third_party/envoy/" + EF_BAZEL.path]))

    add("envoy/vendored-07-bazel-external-plain.diff", "vendored", "caught",
        "plain diff -u of Bazel's external/envoy/ copy of the RBAC matcher",
        plain_files([EF_RBAC], lambda p: f"external/envoy/{p}.orig", lambda p: f"external/envoy/{p}"))

    add("envoy/vendored-08-third-party-contrib.patch", "vendored", "caught",
        "Envoy contrib/ extension under third_party/envoy/contrib/golang/",
        git_diff([EF_GOLANG], paths=["third_party/envoy/" + EF_GOLANG.path]))

    tls = [EF_TLS, EF_TLS_TEST]
    add("envoy/vendored-09-git-submodule.patch", "vendored", "caught",
        "Envoy as a submodule at modules/envoy/ with source/ and test/ changes",
        format_patch(tls, "modules/envoy: a wildcard SAN covers exactly one label", JONAS, D4,
                     envoy_body("Backport into the submodule until we can bump it.", JONAS),
                     paths=["modules/envoy/" + fd.path for fd in tls]))

    add("envoy/vendored-10-versioned-lib-folder.patch", "vendored", "caught",
        "Envoy tree under a versioned folder lib/envoy-1.31/",
        git_diff([EF_ROUTER], paths=["lib/envoy-1.31/" + EF_ROUTER.path]))


def build_case():
    add("envoy/case-01-capitalised-path.patch", "case", "caught",
        "Source/Common/Http/utility.cc as a case-insensitive file system would accept it",
        format_patch([EF_UTIL], "http: refuse empty X-Forwarded-For elements", LUCIA, D5,
                     envoy_body("Empty elements were counted as trusted hops.", LUCIA),
                     paths=["Source/Common/Http/utility.cc"]))

    add("envoy/case-02-upper-case-root.patch", "case", "caught",
        "SOURCE/extensions/... with the top folder in capitals",
        git_diff([EF_JWT], paths=["SOURCE/extensions/filters/http/jwt_authn/authenticator.cc"]))

    add("envoy/case-03-doubled-separators.diff", "case", "caught",
        "paths with ./ segments and doubled // separators",
        plain_files([EF_PATH, EF_PATH_TEST],
                    lambda p: "./" + p.replace("/common/", "//common/", 1) + ".orig",
                    lambda p: p.replace("/common/", "/./common//", 1)))

    q = '"{}/source/common/http/validaci\\303\\263n.cc"'
    add("envoy/case-04-quoted-utf8-path.patch", "case", "caught",
        "git-quoted path with octal escapes for a non-ASCII file name under source/common/http/",
        git_diff_quoted(EF_HDR, q.format("a"), q.format("b")))

    q = '"{}/\\163ource/\\143ommon/http/conn_manager_impl.cc"'
    add("envoy/case-05-quoted-octal-ascii.patch", "case", "caught",
        "quoted git paths that spell plain ASCII letters of source/common/ as octal escapes",
        git_diff_quoted(EF_HCM, q.format("a"), q.format("b")))

    add("envoy/case-06-trailing-space-header.diff", "case", "caught",
        "--- and +++ header lines with a trailing space after the path",
        lines(plain_file(EF_ADMIN, f"a/{EF_ADMIN.path} ", f"b/{EF_ADMIN.path} ")))

    add("envoy/case-07-dot-dot-segment.patch", "case", "caught",
        "paths with a .. segment: a/test/../source/extensions/...",
        git_diff([EF_EXTAUTHZ], paths=["test/../" + EF_EXTAUTHZ.path]))

    add("envoy/case-08-mixed-case-api-and-headers.patch", "case", "caught",
        "Api/Envoy/Config/... proto and ENVOY/http/filter.h in odd capitalisation",
        format_patch([EF_PROTO, EF_IFACE], "route: reject encoded separators; add overflow reset",
                     KENJI, D6, envoy_body("Two pieces of the same advisory.", KENJI),
                     paths=["Api/Envoy/Config/Route/V3/route_components.proto", "ENVOY/http/filter.h"]))


    add("envoy/case-09-fullwidth-path.patch", "case", "caught",
        "path spelt with fullwidth letters and solidus, which NFKC folds to source/common/",
        git_diff([EF_UTIL], paths=["\uff53\uff4f\uff55\uff52\uff43\uff45\uff0f\uff43\uff4f\uff4d\uff4d\uff4f\uff4e\uff0fhttp/utility.cc"]))

    add("envoy/case-10-cyrillic-homoglyphs.patch", "case", "caught",
        "source/common/ spelt with Cyrillic o and c that look like the Latin letters",
        git_diff([EF_HDR], paths=["s\u043eur\u0441e/\u0441\u043emm\u043en/http/header_utility.cc"]))

    add("envoy/case-11-zero-width-in-path.patch", "case", "caught",
        "zero-width space and joiner inside the folder names of source/extensions/",
        git_diff([EF_EXTAUTHZ], paths=["sour\u200bce/exten\u200dsions/filters/http/ext_authz/ext_authz.cc"]))


    add("envoy/case-12-dotdot-out-of-declared-folder.patch", "case", "caught",
        "a path that starts in the project's declared istio_stats/ folder and leaves it with .. into source/common/",
        git_diff([EF_UTIL], paths=["source/extensions/filters/http/istio_stats/../../../../common/http/utility.cc"]))


def git_diff_quoted(fd, a, b):
    out = git_file(fd, a=a, b=b)
    return "\n".join(out) + "\n"


def build_content():
    add("envoy/content-01-namespace-envoy.patch", "content", "caught",
        "new file src/proxy/fix.cc whose added lines open namespace Envoy { namespace Http {",
        format_patch([CT_NAMESPACE], "proxy: limit CONTINUATION frames", RM, D1,
                     "Adds the frame limit we need for the 1.9.5 release.\n\nSigned-off-by: " + RM))

    add("envoy/content-02-qualified-names.patch", "content", "caught",
        "lib/h2/limits.h whose added lines use Envoy::Http:: qualified types",
        git_diff([CT_QUALIFIERS]))

    add("envoy/content-03-envoy-include.patch", "content", "caught",
        "src/filters/h2_guard.cc adding #include \"envoy/http/codec.h\" and header_map.h",
        format_patch([CT_INCLUDE], "filters: check the header count in the h2 guard", SAM, D2,
                     "The size check alone let many tiny headers through.\n\nSigned-off-by: " + SAM))

    add("envoy/content-04-source-include-assert.diff", "content", "caught",
        "an upload named like patches/0001.diff on proxy/codec.cc adding #include \"source/common/common/assert.h\"",
        git_diff([CT_SOURCE_INCLUDE]))

    add("envoy/content-05-renamed-repository-locations.patch", "content", "caught",
        "Envoy's repository_locations.bzl dict entry (use_category, extensions = [envoy.filters...]) in build/external_deps.bzl",
        format_patch([CT_BZL], "build: add the JOSE header checks dependency", JONAS, D3,
                     "Needed by the JWT hardening.\n\nSigned-off-by: " + JONAS))

    add("envoy/content-06-envoy-cc-library-build.patch", "content", "caught",
        "a BUILD file at native/h2/BUILD loading envoy_build_system.bzl with envoy_cc_library( and envoy_package()",
        git_diff([CT_BUILD]))

    add("envoy/content-07-proto-package.patch", "content", "caught",
        "new proto/path_sanitization.proto declaring package envoy.config.route.v3",
        format_patch([CT_PROTO_PKG], "proto: add path sanitization settings", KENJI, D4,
                     "Settings for the encoded-separator check.\n\nSigned-off-by: " + KENJI))

    add("envoy/content-08-proto-envoy-import.patch", "content", "caught",
        "schema/authz.proto adding import \"envoy/config/core/v3/base.proto\" and envoy.type.matcher fields",
        git_diff([CT_PROTO_IMPORT]))

    add("envoy/content-09-envoy-log-macros.patch", "content", "caught",
        "gateway/listener.cc adding ENVOY_LOG(debug, ...) and ENVOY_CONN_LOG lines",
        format_patch([CT_LOG], "gateway: close connections with too many premature resets", AMARA, D5,
                     "Rapid reset mitigation.\n\nSigned-off-by: " + AMARA))

    add("envoy/content-10-envoy-bug-macro.diff", "content", "caught",
        "core/conn_pool.cc adding ENVOY_BUG( checks",
        plain_files([CT_BUG], lambda p: "a/" + p, lambda p: "b/" + p, ts=False))

    add("envoy/content-11-nested-namespace.patch", "content", "caught",
        "C++17 nested namespace Envoy::Http::Http2 { instead of namespace Envoy {",
        git_diff([CT_NESTED_NS]))

    add("envoy/content-12-removed-lines-only.patch", "content", "caught",
        "the Envoy qualifiers appear only in removed lines: the fix was de-namespaced before upload",
        format_patch([CT_REMOVED_ONLY], "http: stop at empty X-Forwarded-For elements", TOMASZ, D6,
                     "Signed-off-by: " + TOMASZ))

    add("envoy/content-13-test-mocks.patch", "content", "caught",
        "new tests/h2_limits_test.cc including test/mocks/http/mocks.h and using Envoy::Http:: test types",
        git_diff([CT_TEST]))

    add("envoy/content-14-using-declarations.patch", "content", "caught",
        "fix.cc at the top level adding using Envoy::Http:: declarations and ENVOY_STREAM_LOG",
        format_patch([CT_USING], "authz: refuse to remove pseudo-headers and host", PRIYA, D1,
                     "Signed-off-by: " + PRIYA))

    add("envoy/content-15-angle-include.patch", "content", "caught",
        "plugins/authz/filter.h adding #include <envoy/http/filter.h> in angle brackets",
        git_diff([CT_ANGLE]))


def build_content_unicode():
    add("envoy/content-16-greek-epsilon-namespace.patch", "content", "caught",
        "namespace Envoy written with a Greek capital epsilon, at a neutral path",
        git_diff([CT_NAMESPACE]).replace("namespace Envoy", "namespace \u0395nvoy")
        .replace("src/proxy/fix.cc", "src/proxy/frames.cc"))

    add("envoy/content-17-zero-width-qualifiers.patch", "content", "caught",
        "Envoy:: qualifiers with a zero-width space hidden inside the name",
        git_diff([CT_QUALIFIERS]).replace("Envoy::", "Env\u200boy::")
        .replace("lib/h2/limits.h", "lib/h2/frame_limits.h"))


def mail_split(text):
    head, body = text.split("\n\n", 1)
    return head, body


def build_encoding():
    fp = format_patch([EF_EXTAUTHZ], "ext_authz: never remove pseudo-headers or host", MARTA, D1,
                      envoy_body("An authorization server could strip :path and reach the default route.",
                                 MARTA))
    add("envoy/encoding-01-crlf.patch", "encoding", "caught",
        "the whole format-patch with CRLF line endings", crlf(fp))

    add("envoy/encoding-02-utf8-bom.patch", "encoding", "caught",
        "a git diff that starts with a UTF-8 byte order mark",
        "\ufeff" + git_diff([EF_PATH, EF_PATH_TEST]))

    fp = format_patch([EF_JWT], "jwt_authn: refuse tokens without iss for issuer-bound providers", DEV,
                      D2, envoy_body("Same fix as upstream, sent through our list.", DEV))
    head, body = mail_split(fp)
    head += ("\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8"
             "\nContent-Transfer-Encoding: quoted-printable")
    qp = quopri.encodestring(body.encode("utf-8")).decode("ascii")
    assert "=\n" in qp
    add("envoy/encoding-03-quoted-printable.mbox", "encoding", "caught",
        "mbox whose body is quoted-printable: paths soft-wrapped with = and = written as =3D",
        head + "\n\n" + qp)

    att = format_patch([EF_H2_CC], "http2: cap CONTINUATION frames per header block", PRIYA, D3,
                       envoy_body("Part of the HTTP/2 advisory.", PRIYA, risk="Medium"))
    b64 = base64.encodebytes(att.encode("utf-8")).decode("ascii")
    name = "0001-http2-cap-CONTINUATION-frames-per-header-block.patch"
    boundary = "------------7B1F0C2D9E4A5B60"
    eml = f"""From priya.natarajan@example.com Wed Jun  5 11:03:27 2024
Message-ID: <7b1f0c2d-9e4a-5b60-a1c2-d3e4f5a6b7c8@example.com>
Date: {D3}
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: {PRIYA}
To: Rel Manager <rm@example.org>
Subject: [PATCH] http2: cap CONTINUATION frames per header block
Content-Type: multipart/mixed; boundary="{boundary}"

This is a multi-part message in MIME format.
--{boundary}
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Hi,

the fix for the 1.9.5 release is attached; please apply it with git am.

Priya

--{boundary}
Content-Type: text/x-patch; charset=UTF-8; name="{name}"
Content-Disposition: attachment; filename="{name}"
Content-Transfer-Encoding: base64

{b64}
--{boundary}--
"""
    add("envoy/encoding-04-mime-base64-attachment.mbox", "encoding", "caught",
        "an mbox holding a MIME multipart mail whose format-patch is a base64 attachment part", eml)

    neutral = [EF_HDR.moved("proxy/http/header_check.cc")]
    subj = "http: backport envoyproxy/envoy fix \u2013 reject NUL, CR and LF in header values"
    enc = base64.b64encode(subj.encode("utf-8")).decode("ascii")
    # Two encoded words on a folded line, split on a 4-character boundary of the base64.
    subject_hdr = "=?UTF-8?B?" + enc[:48] + "?=\n =?UTF-8?B?" + enc[48:] + "?="
    assert base64.b64decode(enc[:48]) + base64.b64decode(enc[48:]) == subj.encode()
    author = ("=?UTF-8?q?In=C3=A9s=20Moreno=20=28envoyproxy/envoy=20backports=29?= "
              "<ines.moreno@example.org>")
    fp = format_patch(neutral, "X", author, D4,
                      "Backported for the next release.\n\nSigned-off-by: Ines Moreno <ines.moreno@example.org>",
                      extra_headers=["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
                                     "Content-Transfer-Encoding: 8bit"])
    fp = fp.replace("Subject: [PATCH] X", "Subject: [PATCH] " + subject_hdr, 1)
    add("envoy/encoding-05-rfc2047-headers.patch", "encoding", "caught",
        "neutral paths; only the RFC 2047 encoded Subject and From name envoyproxy/envoy", fp)

    fp = format_patch([EF_RBAC], "rbac: match every value of a repeated header", JONAS, D5,
                      envoy_body("A deny rule could be bypassed by repeating the header.", JONAS))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = fp.encode("utf-8")
        info = tarfile.TarInfo("0001-rbac-match-every-value-of-a-repeated-header.patch")
        info.size = len(data)
        info.mtime = 1717574400
        info.mode = 0o644
        info.uname = info.gname = "jonas"
        info.uid = info.gid = 1000
        tar.addfile(info, io.BytesIO(data))
    add("envoy/encoding-06-ustar-archive.tar", "encoding", "caught",
        "an uncompressed ustar archive holding the .patch (text inside, NUL-padded headers)",
        buf.getvalue())

    fp = format_patch([EF_TLS, EF_TLS_TEST], "tls: a wildcard SAN covers exactly one label", AMARA, D6,
                      envoy_body("*.example.com matched a.b.example.com.", AMARA))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        zi = zipfile.ZipInfo("patches/0001-tls-a-wildcard-SAN-covers-exactly-one-label.patch",
                             date_time=(2024, 6, 10, 13, 58, 2))
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.external_attr = 0o644 << 16
        z.writestr(zi, fp)
    add("envoy/encoding-07-zip-archive.zip", "encoding", "caught",
        "a zip archive holding the format-patch under patches/", buf.getvalue())

    fp = format_patch([EF_ADMIN], "admin: refuse cross-origin requests to mutating endpoints", SAM, D1,
                      envoy_body("Browsers can POST to the admin port.", SAM))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="0001-admin-refuse-cross-origin-requests.patch", mode="wb",
                       fileobj=buf, mtime=1717400000) as gz:
        gz.write(fp.encode("utf-8"))
    add("envoy/encoding-08-gzip.patch.gz", "encoding", "caught",
        "the format-patch gzip-compressed", buf.getvalue())

    fp = format_patch([EF_UTIL], "http: refuse empty X-Forwarded-For elements", TOMASZ, D2,
                      envoy_body("Empty XFF elements were counted as trusted hops.\nPASTE_MARK", TOMASZ))
    fp = fp.replace("PASTE_MARK", "Pasted from the advisory draft:\x00 see the internal ticket.")
    add("envoy/encoding-09-nul-byte.patch", "encoding", "caught",
        "a NUL byte in the commit message of an otherwise normal format-patch", fp)

    add("envoy/encoding-10-combined-merge-diff.patch", "encoding", "caught",
        "git show of a merge commit: a diff --cc combined diff on source/common/http/",
        combined_merge())

    add("envoy/encoding-11-series-third-is-envoy.mbox", "encoding", "caught",
        "format-patch series of 3 in one mbox where only message 3/3 touches source/extensions/",
        series_of_three())

    add("envoy/encoding-12-utf16le-powershell.patch", "encoding", "caught",
        "git diff redirected by Windows PowerShell: UTF-16LE with a BOM and CRLF",
        ("\ufeff" + crlf(git_diff([EF_ROUTER]))).encode("utf-16-le"))

    fp = format_patch([EF_PROTO], "route: add RouteAction.reject_encoded_separators", KENJI, D3,
                      envoy_body("API part of the encoded separator advisory.", OLU_ENVOY))
    head, body = mail_split(fp)
    head += ("\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8"
             "\nContent-Transfer-Encoding: base64")
    add("envoy/encoding-13-base64-body.mbox", "encoding", "caught",
        "single-part mail whose whole body (diff and an envoyproxy.io sign-off) is base64",
        head + "\n\n" + base64.encodebytes(body.encode("utf-8")).decode("ascii"))

    text = git_diff([EF_IFACE])
    mixed = []
    for i, ln in enumerate(text.split("\n")[:-1]):
        mixed.append(ln + ("\r\n" if i % 2 else "\n"))
    add("envoy/encoding-14-mixed-line-endings.patch", "encoding", "caught",
        "a git diff on envoy/http/filter.h whose lines alternate between LF and CRLF",
        "".join(mixed))


def combined_merge():
    body = [
        ("  ", "}"),
        ("  ", ""),
        ("  ", "bool HeaderUtility::headerValueIsValid(const absl::string_view header_value) {"),
        ("- ", "  // Values are validated again by the HTTP/1 codec on the release branch."),
        ("+ ", "  // RFC 9110 5.5: NUL, CR and LF are never valid in a field value, whatever the codec."),
        ("+ ", "  for (const char c : header_value) {"),
        ("+ ", "    if (c == '\\0' || c == '\\r' || c == '\\n') {"),
        ("+ ", "      return false;"),
        ("+ ", "    }"),
        ("+ ", "  }"),
        ("++", "  // 1.9 branch: the HTTP/1 codec no longer re-checks values, this is the only check."),
        ("  ", "  return nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(header_value.data()),"),
        ("  ", "                                    header_value.size()) != 0;"),
        ("  ", "}"),
        ("  ", ""),
        ("  ", "bool HeaderUtility::headerNameIsValid(absl::string_view header_key) {"),
    ]
    p1 = sum(1 for m, _ in body if m[0] == "-" or ("-" not in m and m[0] == " "))
    p2 = sum(1 for m, _ in body if m[1] == "-" or ("-" not in m and m[1] == " "))
    res = sum(1 for m, _ in body if "-" not in m)
    merge = sha("merge-release-1.9-header-values")
    out = [
        f"commit {merge}",
        "Merge: 3f1c2aa 8b7e0d1",
        "Author: Tomasz Wielgosz <t.wielgosz@example.com>",
        "Date:   Wed Jun 5 11:03:27 2024 +0100",
        "",
        "    Merge branch 'security/header-values' into release-1.9",
        "",
        "    # Conflicts:",
        "    #       source/common/http/header_utility.cc",
        "",
        f"diff --cc {EF_HDR.path}",
        "index 3f1c2aa,8b7e0d1..c94d5e2",
        f"--- a/{EF_HDR.path}",
        f"+++ b/{EF_HDR.path}",
        f"@@@ -193,{p1} -193,{p2} +193,{res} @@@ bool HeaderUtility::authorityIsValid(const absl::string_view header_v",
    ]
    out += [m + c for m, c in body]
    return "\n".join(out) + "\n"


def series_of_three():
    msgs = [
        format_patch([PG_SERIES_1], "pilot: log the rejected EnvoyFilter patch name", DEV, D4,
                     "Operators could not tell which EnvoyFilter was skipped.\n\nSigned-off-by: " + DEV,
                     number=(1, 3)),
        format_patch([PG_SERIES_2], "security: lower the default CSR rate limit", DEV,
                     "Thu, 6 Jun 2024 18:31:40 -0700",
                     "Signed-off-by: " + DEV, number=(2, 3), sha_seed="series-2"),
        format_patch([EF_OAUTH], "oauth2: only return to URLs on the same host", DEV,
                     "Fri, 7 Jun 2024 10:05:12 -0700",
                     envoy_body("The state parameter was an open redirect.", DEV),
                     number=(3, 3), sha_seed="series-3"),
    ]
    return "".join(msgs)


def build_split():
    h2cc, h2h, h2s = EF_H2_CC, EF_H2_H, EF_H2_STATS
    base = "envoy/depth-05-no-prefix.patch"
    add("envoy/split-1-part1.patch", "split", "caught-with:" + base,
        "the .cc hunks of the HTTP/2 fix under h2/conn.cc, nothing Envoy-like in paths or lines",
        format_patch([h2cc.moved("h2/conn.cc")], "h2: count CONTINUATION frames", RM, D5,
                     "Part 1 of 2.\n\nSigned-off-by: " + RM))
    add("envoy/split-1-part2.patch", "split", "caught-with:" + base,
        "the header and stats hunks of the same fix renamed to h2/conn.h and h2/stats.h",
        git_diff([h2h.moved("h2/conn.h"), h2s.moved("h2/stats.h")]))

    base = "envoy/vendored-02-third-party-proxy.patch"
    add("envoy/split-2-part1.patch", "split", "caught-with:" + base,
        "the jwt_authn issuer check alone, renamed to auth/verify.cc",
        git_diff([EF_JWT.moved("auth/verify.cc")]))
    add("envoy/split-2-part2.patch", "split", "caught-with:" + base,
        "its unit test alone, renamed to auth/verify_test.cc",
        format_patch([EF_JWT_TEST.moved("auth/verify_test.cc")], "auth: test tokens without iss", RM,
                     D5, "Part 2 of 3.\n\nSigned-off-by: " + RM))
    add("envoy/split-2-part3.patch", "split", "caught",
        "the new test token header renamed to auth/testdata/tokens.h; its added lines open namespace Envoy",
        git_diff([EF_JWT_TOKEN.moved("auth/testdata/tokens.h")]))

    base = "envoy/depth-01-release-folders.patch"
    add("envoy/split-3-part1.patch", "split", "caught-with:" + base,
        "the X-Forwarded-For fix alone as net/xff.cc",
        plain_files([EF_UTIL.moved("net/xff.cc")], lambda p: "a/" + p, lambda p: "b/" + p, ts=False))
    add("envoy/split-3-part2.patch", "split", "caught-with:" + base,
        "its test alone as net/xff_test.cc",
        plain_files([EF_UTIL_TEST.moved("net/xff_test.cc")], lambda p: "a/" + p, lambda p: "b/" + p,
                    ts=False))


def ws_variant(fd, path, shift, contexts, tabs=False):
    """The same changed lines with other context, line numbers and white space: one context
    line before and after each hunk's changes, replaced by `contexts[i]` = (before, after)."""
    hunks = []
    for k, h in enumerate(fd.hunks):
        ls = h.lines
        first = next(i for i, l in enumerate(ls) if l[0] != " ")
        last = max(i for i, l in enumerate(ls) if l[0] != " ")
        assert first > 0 and last < len(ls) - 1
        ls = [" " + contexts[k][0]] + ls[first:last + 1] + [" " + contexts[k][1]]
        out = []
        for n, l in enumerate(ls):
            mark, content = l[0], l[1:]
            stripped = content.lstrip(" ")
            indent = len(content) - len(stripped)
            if tabs:
                content = "\t" * (indent // 2) + " " * (indent % 2) + stripped
            else:
                content = " " * (indent * 2) + stripped
            if mark != " " and n % 3 == 0 and content.strip():
                content += "  "
            out.append(mark + content if content.strip() else mark)
        nh = H(h.old_start + shift + first - 1, " x", "")
        nh.lines = out
        hunks.append(nh)
    return FD(path, hunks, fd.new)


def build_dup():
    add("envoy/dup-01-copy-of-depth-01.patch", "dup", "caught-after:envoy/depth-01-release-folders.patch",
        "byte-identical copy of depth-01 uploaded again under another name",
        FILES["envoy/depth-01-release-folders.patch"])
    add("envoy/dup-02-copy-of-gzip.patch.gz", "dup", "caught-after:envoy/encoding-08-gzip.patch.gz",
        "byte-identical copy of the gzip upload encoding-08",
        FILES["envoy/encoding-08-gzip.patch.gz"])
    add("envoy/dup-03-copy-of-split-part.patch", "dup", "caught-after:envoy/split-1-part2.patch",
        "byte-identical copy of split-1-part2, which has no Envoy signal of its own",
        FILES["envoy/split-1-part2.patch"])

    fds = [ws_variant(EF_H2_CC, "net/http2/session.cc", 37, [
               ("  RETURN_IF_ERROR(trackInboundFrames(*frame));",
                "  if (frame->hd.type == NGHTTP2_HEADERS) {"),
               ("  } // neither HEADERS nor DATA",
                "  StreamImpl* const stream = findStream(frame->hd.stream_id);")]),
           ws_variant(EF_H2_H, "net/http2/session.h", -12, [
               ("    std::string details_;", "    // Bytes waiting for the peer's flow-control window."),
               ("  uint32_t stream_buffer_limit_;", "  const bool allow_metadata_;")], tabs=True),
           ws_variant(EF_H2_STATS, "net/http2/stats.h", 4, [
               ("  COUNTER(dropped_headers)                                                        \\",
                "  COUNTER(goaway_received)                                                        \\")])]
    add("envoy/dup-ws-01-h2-reindented.patch", "dup", "caught-after:envoy/depth-05-no-prefix.patch",
        "the HTTP/2 fix's changed lines re-indented with other paths, context and line numbers",
        format_patch(fds, "net: bound header continuation", RM, D6, "Signed-off-by: " + RM))
    add("envoy/dup-ws-02-jwt-tabs.patch", "dup", "caught-after:envoy/vendored-02-third-party-proxy.patch",
        "the jwt_authn hunk tab-indented under auth/token_check.cc with other context and numbers",
        git_diff([ws_variant(EF_JWT, "auth/token_check.cc", 103, [
            ("  } // no key set for this provider", "  // Clock skew defaults to one minute.")],
            tabs=True)]))
    add("envoy/dup-ws-03-path-normalisation.diff", "dup", "caught-after:envoy/depth-04-orig-suffix-no-prefix.diff",
        "the path normalisation hunks with doubled indentation and trailing blanks at new paths",
        plain_files([ws_variant(EF_PATH, "lib/url/canon.cc", -21, [
            ("  absl::string_view query = original_path.substr(std::min(query_pos, original_path.size()));",
             "  headers.setPath(normalized_path + std::string(query));"),
            ("  absl::string_view path = original_path.substr(0, query_start);",
             "  absl::string_view query = absl::ClippedSubstr(original_path, query_start);")])],
            lambda p: "a/" + p,
                    lambda p: "b/" + p, ts=False))


def freetext(rel, field, value, note):
    add("envoy/" + rel, "freetext", "caught", note,
        json.dumps({"field": field, "value": value}, indent=2, ensure_ascii=False) + "\n")


def build_freetext():
    hunk = "\n".join(render_hunks(EF_HDR)[:1 + len(EF_HDR.hunks[0].lines)])
    freetext("freetext-01-summary-with-hunk.json", "summary",
             "Header values containing NUL, CR or LF were forwarded to upstreams. The fix:\n\n" + hunk,
             "an advisory summary that pastes a diff hunk with its @@ header and + lines")
    freetext("freetext-02-notes-namespace.json", "notes",
             "Reviewers: the change is small, here it is inline so you do not need the patch.\n\n"
             "namespace Envoy {\nnamespace Http {\n\nbool HeaderUtility::headerValueIsValid("
             "const absl::string_view header_value) {\n  for (const char c : header_value) {\n"
             "    if (c == '\\0' || c == '\\r' || c == '\\n') {\n      return false;\n    }\n  }\n"
             "  return true;\n}\n\n} // namespace Http\n} // namespace Envoy\n",
             "release notes that carry C++ code opening namespace Envoy {")
    freetext("freetext-03-title-envoy-cve.json", "title", "Envoy CVE fix 1.31.3",
             "an advisory title naming Envoy's own release")
    freetext("freetext-04-affected-versions-diff-header.json", "affected_versions",
             "< 1.9.5\n--- a/source/common/http/utility.cc\n+++ b/source/common/http/utility.cc",
             "affected versions followed by diff file headers for source/common/http/utility.cc")
    freetext("freetext-05-cvss-vector-code.json", "cvss_vector",
             "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H "
             "if (++stream->continuation_frames_ > max_continuation_frames_) "
             "{ return codecProtocolError(\"too many CONTINUATION frames\"); }",
             "a CVSS vector field with a line of the HTTP/2 fix appended")
    freetext("freetext-06-notes-envoy-include.json", "notes",
             "To build the backport add these to the filter:\n#include \"envoy/http/filter.h\"\n"
             "#include \"source/common/http/utility.h\"\n",
             "notes that carry #include \"envoy/http/filter.h\"")
    freetext("freetext-07-fixed-versions-hunk.json", "fixed_versions",
             "1.9.5\n+++ b/source/extensions/filters/http/jwt_authn/authenticator.cc\n"
             "@@ -214,6 +214,13 @@ void AuthenticatorImpl::startVerify() {\n"
             "+  if (jwt_->iss_.empty() && !jwks_data_->getJwtProvider().issuer().empty()) {",
             "fixed versions followed by a file header and a hunk of the jwt_authn fix")
    freetext("freetext-08-summary-qualified-name.json", "summary",
             "Backport of the upstream fix to Envoy::Http::HeaderUtility::headerValueIsValid and "
             "Envoy::Http::Http2::ConnectionImpl::onFrameReceived, which we ship unchanged.",
             "a summary naming Envoy::Http:: functions the release ships")
    mbox = format_patch([EF_TLS], "tls: a wildcard SAN covers exactly one label", AMARA, D6,
                        "Signed-off-by: " + AMARA)
    freetext("freetext-09-notes-pasted-mbox.json", "notes",
             "Patch for the record (apply with git am):\n\n" + mbox,
             "notes holding a whole git format-patch message for source/extensions/transport_sockets/")


# --------------------------------------------------------------------------------------------
# project/: the project's own patches (an Istio-like service mesh in Go). They talk about Envoy
# all the time without containing Envoy's code.
# --------------------------------------------------------------------------------------------


def G(old_start, text, func=""):
    """A hunk of gofmt'ed code: written here with 4-space indents, emitted with tabs."""
    out = []
    text = text[1:] if text.startswith("\n") else text
    text = text[:-1] if text.endswith("\n") else text
    for ln in text.split("\n"):
        if ln == "":
            out.append(" ")
            continue
        # Context lines are written without their marker; changed lines with it.
        mark, content = (ln[0], ln[1:]) if ln[0] in "+-" else (" ", ln)
        stripped = content.lstrip(" ")
        n = (len(content) - len(stripped)) // 4
        rest = content[n * 4:]
        out.append(mark + "\t" * n + rest)
    return H(old_start, "\n".join(out), func)


P1, P2, P3, P4, P5, P6 = (
    "Mon, 2 Mar 2026 10:14:03 +0100", "Tue, 3 Mar 2026 15:40:51 +0000",
    "Wed, 4 Mar 2026 08:05:17 -0800", "Thu, 5 Mar 2026 12:31:44 +0530",
    "Fri, 6 Mar 2026 17:02:09 +0100", "Mon, 9 Mar 2026 09:27:38 +0000")
NADIA = "Nadia Haddad <nadia.haddad@example.com>"
OWEN = "Owen Pritchard <owen.pritchard@example.org>"
FREYA = "Freya Lindqvist <freya.lindqvist@example.com>"
RAVI = "Ravi Chandrasekar <ravi.c@example.org>"
MEI = "Mei Tanaka <mei.tanaka@example.com>"
BRUNO = "Bruno Carvalho <bruno.carvalho@example.org>"


def so(person):
    return "\n\nSigned-off-by: " + person


PG_SERIES_1 = FD("pilot/pkg/networking/core/envoyfilter/listener_patch.go", [G(205, """
            if !commonConditionMatch(patchContext, lp) {
                continue
            }
            if lp.Operation == networking.EnvoyFilter_Patch_REMOVE {
+                log.Debugf("EnvoyFilter %s/%s removes listener %s", lp.Namespace, lp.Name, lis.Name)
                lis.Name = ""
                continue
            }
""", "func patchListeners(patchContext networking.EnvoyFilter_PatchContext,")])

PG_SERIES_2 = FD("security/pkg/server/ca/options.go", [G(31, """
    // DefaultWorkloadCertTTL is the certificate lifetime handed to proxies that ask for none.
    DefaultWorkloadCertTTL = 24 * time.Hour
-    // DefaultCSRRateLimit is the number of CSRs per second a single istiod accepts.
-    DefaultCSRRateLimit = 100
+    // DefaultCSRRateLimit is the number of CSRs per second a single istiod accepts. A node
+    // restart re-issues every workload certificate at once; 40/s keeps the CA responsive.
+    DefaultCSRRateLimit = 40
)

// Options configures the CA gRPC server.
""", "const (")])

P_LISTENER_NIL = FD("pilot/pkg/networking/core/envoyfilter/listener_patch.go", [G(412, """
    fc *listener.FilterChain, listenerPatched bool,
) bool {
    filterChainPatched := false
+    if fc == nil {
+        // A listener built without filter chains (a blackhole passthrough, for example) has
+        // nothing to patch; skip it instead of dereferencing nil below.
+        return false
+    }
    for _, lp := range patches[networking.EnvoyFilter_FILTER_CHAIN] {
        if !commonConditionMatch(patchContext, lp) ||
            !listenerMatch(lis, lp) ||
""", "func patchFilterChain(patchContext networking.EnvoyFilter_PatchContext,")])

P_PROXY_ARGS = FD("pkg/envoy/proxy.go", [G(131, """
    if e.ComponentLogLevel != "" {
        startupArgs = append(startupArgs, "--component-log-level", e.ComponentLogLevel)
    }
+    // Envoy sizes its worker pool from the host's CPU count unless told otherwise; inside a
+    // container with a CPU limit that starts far more workers than the quota allows.
+    if e.Concurrency == 0 && e.CPULimit > 0 {
+        startupArgs = append(startupArgs, "--concurrency", fmt.Sprint(e.CPULimit))
+    }

    // Explicitly enable core dumps. This may be desirable more often (by default), but for now we only set it in VM tests.
    if enableEnvoyCoreDump {
""", "func (e *envoy) args(fname string, overrideFname string) []string {")])

P_CA_TTL = FD("security/pkg/server/ca/server.go", [G(92, """
    if err != nil {
        s.monitoring.AuthnError.Increment()
        return nil, status.Error(codes.Unauthenticated, err.Error())
    }
+    // A client may ask for any validity: never sign for longer than the configured maximum.
+    requested := time.Duration(request.ValidityDuration) * time.Second
+    if requested <= 0 || requested > s.maxWorkloadCertTTL {
+        requested = s.defaultWorkloadCertTTL
+    }
    // TODO: Call authorizer.
    crMetadata := request.Metadata.GetFields()
    impersonatedIdentity := crMetadata[security.ImpersonatedIdentity].GetStringValue()
""", "func (s *Server) CreateCertificate(ctx context.Context, request *pb.IstioCertificateRequest) (")])

P_SECRET_JITTER = FD("security/pkg/nodeagent/cache/secretcache.go", [G(786, """
    // In case there are two calls to GenerateSecret at once, we don't want both to be concurrently registered
    if sc.cache.GetWorkload() != nil {
        resourceLog(item.ResourceName).Infof("skip scheduling certificate rotation, already scheduled")
        return
    }
+    // Spread the rotations of proxies started together (a node restart) over a jitter window,
+    // so that the CA does not receive every renewal in the same second.
+    if sc.configOptions.RotationJitter > 0 {
+        delay += time.Duration(rand.Int63n(int64(sc.configOptions.RotationJitter)))
+    }
    sc.cache.SetWorkload(&item)
    resourceLog(item.ResourceName).Debugf("scheduled certificate for rotation in %v", delay)
    certExpirySeconds.ValueFrom(func() float64 { return time.Until(item.ExpireTime).Seconds() }, ResourceName.Value(item.ResourceName))
""", "func (sc *SecretManagerClient) registerSecret(item security.SecretItem) {")])

P_OPERATOR = FD("operator/pkg/apis/validation/validation.go", [G(88, """
    return errs
}

+// validateProxyConcurrency refuses worker counts Envoy would reject at start-up, so that the
+// install fails with a message instead of leaving sidecars in a crash loop.
+func validateProxyConcurrency(values *v1alpha1.Values) util.Errors {
+    proxy := values.GetGlobal().GetProxy()
+    if proxy == nil || proxy.GetConcurrency() == nil {
+        return nil
+    }
+    if c := proxy.GetConcurrency().GetValue(); c < 0 || c > 256 {
+        return util.NewErrs(fmt.Errorf("global.proxy.concurrency must be between 0 and 256, got %d", c))
+    }
+    return nil
+}
+
func validateFeatures(values *v1alpha1.Values, spec *v1alpha1.IstioOperatorSpec) util.Errors {
    var errs util.Errors
    core := values.GetGlobal()
""", "func validateGateways(gw []*v1alpha1.GatewaySpec, gwType string) util.Errors {")])

P_BOOTSTRAP_YAML = FD("manifests/charts/gateway/templates/envoy-bootstrap.yaml", [H(0, """
+{{- if .Values.bootstrapOverride.enabled }}
+apiVersion: v1
+kind: ConfigMap
+metadata:
+  name: {{ include "gateway.name" . }}-envoy-bootstrap
+  namespace: {{ .Release.Namespace }}
+  labels:
+    {{- include "gateway.labels" . | nindent 4 }}
+data:
+  # Merged by the agent into the bootstrap it hands to Envoy. Caps downstream connections
+  # so that a connection flood sheds load instead of exhausting the heap.
+  custom_bootstrap.json: |
+    {
+      "overload_manager": {
+        "refresh_interval": "0.25s",
+        "resource_monitors": [
+          {
+            "name": "envoy.resource_monitors.global_downstream_max_connections",
+            "typed_config": {
+              "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
+              "max_active_downstream_connections": {{ .Values.bootstrapOverride.maxDownstreamConnections }}
+            }
+          }
+        ]
+      }
+    }
+{{- end }}
""")], new=True)

P_BOOTSTRAP_VALUES = FD("manifests/charts/gateway/values.yaml", [H(96, """
 # Pod disruption budget for the gateway.
 podDisruptionBudget: {}

+# Extra Envoy bootstrap settings, rendered into the <name>-envoy-bootstrap ConfigMap.
+bootstrapOverride:
+  enabled: false
+  # Downstream connections Envoy accepts before the overload manager refuses new ones.
+  maxDownstreamConnections: 50000
+
 # Sets the per-pod terminationGracePeriodSeconds setting.
 terminationGracePeriodSeconds: 30
""")])

P_LISTENER_IMPORT = FD("pilot/pkg/networking/core/listener_builder.go", [
    G(17, """
import (
    "time"

    core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
+    listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
    hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
    "google.golang.org/protobuf/types/known/durationpb"
    wrappers "google.golang.org/protobuf/types/known/wrapperspb"
"""),
    G(402, """
    return connectionManager
}

+// applyConnectionBufferLimit sets the per-connection buffer limit Envoy applies to a listener,
+// so that a slow reader cannot make the proxy buffer without bound.
+func applyConnectionBufferLimit(l *listener.Listener, limit uint32) {
+    if limit == 0 {
+        return
+    }
+    l.PerConnectionBufferLimitBytes = wrappers.UInt32(limit)
+}
+
// buildListenerFilters builds the listener filters for the given listener.
func buildListenerFilters(lb *ListenerBuilder) []*listener.ListenerFilter {
""", "func buildHTTPConnectionManager(listenerOpts buildListenerOpts, httpOpts *httpListenerOpts,"),
])

P_CLUSTER_MAXREQ = FD("pilot/pkg/networking/core/cluster_builder.go", [G(604, """
    if settings.Http != nil {
-        if settings.Http.MaxRequestsPerConnection > 0 {
-            cb.setMaxRequestsPerConnection(mc, settings.Http.MaxRequestsPerConnection)
-        }
+        // 0 means "use the default" in the API. Never send it to the proxy: older Envoy
+        // releases reject a cluster whose max_requests_per_connection is 0.
+        if n := settings.Http.MaxRequestsPerConnection; n > 0 {
+            cb.setMaxRequestsPerConnection(mc, n)
+        }
        if settings.Http.IdleTimeout != nil {
            idleTimeout = settings.Http.IdleTimeout
        }
""", "func (cb *ClusterBuilder) applyConnectionPool(mesh *meshconfig.MeshConfig,")])

P_GATEWAY_SNI = FD("pilot/pkg/networking/core/gateway.go", [G(733, """
    for _, h := range hosts {
        if h == "" || h == "*" {
+            // Envoy rejects a filter chain whose server_names contains an empty string or a
+            // bare "*" (https://github.com/envoyproxy/envoy/issues/27854); such hosts match
+            // every SNI, which is expressed by leaving the list empty.
            return nil
        }
        sniHosts = append(sniHosts, h)
""", "func getSNIHostsForServer(server *networking.Server) []string {")])

P_PY_DUMP = FD("tools/proxy-config/summarize_listeners.py", [H(18, """
 import json
 import sys

+LISTENERS_DUMP = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"
+
+
+def listener_summary(config_dump):
+    \"\"\"Yields (name, address, number of filter chains) for each active listener of an
+    Envoy config dump, as returned by the admin endpoint /config_dump.\"\"\"
+    for section in config_dump.get("configs", []):
+        if section.get("@type") != LISTENERS_DUMP:
+            continue
+        for entry in section.get("dynamic_listeners", []):
+            listener = entry.get("active_state", {}).get("listener", {})
+            socket = listener.get("address", {}).get("socket_address", {})
+            address = f"{socket.get('address', '?')}:{socket.get('port_value', '?')}"
+            yield listener.get("name", "?"), address, len(listener.get("filter_chains", []))
+

 def main(argv):
     if len(argv) != 2:
""")])

P_RUST_LINT = FD("tools/xds-lint/src/main.rs", [H(12, """
 use std::process::ExitCode;

+/// The current name of an Envoy filter that EnvoyFilter patches still reference by a name
+/// Envoy deprecated; `None` when the name is current.
+fn renamed_filter(name: &str) -> Option<&'static str> {
+    match name {
+        "envoy.http_connection_manager" => Some("envoy.filters.network.http_connection_manager"),
+        "envoy.router" => Some("envoy.filters.http.router"),
+        "envoy.cors" => Some("envoy.filters.http.cors"),
+        "envoy.lua" => Some("envoy.filters.http.lua"),
+        _ => None,
+    }
+}
+
 fn main() -> ExitCode {
     let args: Vec<String> = std::env::args().skip(1).collect();
""")])

P_DOCS = FD("architecture/networking/proxy-filters.md", [H(9, """
 The proxy image ships Envoy with a few extra filters compiled in. This page says where each
 piece lives and who owns it.

+## Where filter code lives
+
+Envoy's own HTTP filters live under `source/extensions/filters/http/` in the Envoy
+repository, and its network filters under `source/extensions/filters/network/`. We do not
+carry patches to those trees: a bug in an Envoy filter is reported to Envoy and fixed there,
+and we pick the fix up when we bump the proxy.
+
+Our own filters (stats, metadata exchange) live in the proxy repository. They follow the
+same layout, so their paths also start with `source/extensions/`; the security process
+declares those folders as ours so that our fixes are not mistaken for Envoy's.
+
 ## Filter order

 Pilot inserts the filters in this order on every inbound HTTP chain:
""")])

P_WASM_CC = FD("extensions/wasm/attributegen/plugin.cc", [H(88, """
 FilterHeadersStatus PluginContext::onRequestHeaders(uint32_t, bool) {
   auto path = getRequestHeader(":path");
+  // Attributes are computed from the path with the configured patterns; refuse to evaluate
+  // them on very long paths, which made the regex engine the slowest part of a request.
+  if (path->view().size() > kMaxPathBytes) {
+    LOG_WARN(absl::StrCat("path longer than ", kMaxPathBytes, " bytes, attributes skipped"));
+    return FilterHeadersStatus::Continue;
+  }
   rootContext()->evaluate(path->view());
   return FilterHeadersStatus::Continue;
 }
""", "namespace attributegen {")])

P_WASM_H = FD("extensions/wasm/attributegen/plugin.h", [H(21, """
 namespace mesh {
 namespace wasm {
 namespace attributegen {

+// Paths longer than this are not matched against the attribute patterns.
+constexpr size_t kMaxPathBytes = 8192;
+
 class PluginRootContext : public RootContext {
 public:
   PluginRootContext(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}
""")])

P_WASM_BUILD = FD("extensions/wasm/attributegen/BUILD", [H(1, """
 load("@proxy_wasm_cpp_sdk//bazel:defs.bzl", "proxy_wasm_cc_binary")

 proxy_wasm_cc_binary(
     name = "attributegen.wasm",
     srcs = [
         "plugin.cc",
         "plugin.h",
     ],
     deps = [
+        "@com_google_absl//absl/strings",
         "@com_google_re2//:re2",
     ],
 )
""")])

P_JWT_ISSUER = FD("pilot/pkg/security/authn/policy_applier.go", [G(268, """
    for i, jwtRule := range jwtRules {
+        // Envoy accepts a provider without an issuer and then matches tokens from any issuer its
+        // JWKS can verify. Every RequestAuthentication rule names an issuer, so a rule that
+        // arrives without one is a configuration error: skip it rather than widen it.
+        if jwtRule.Issuer == "" {
+            authnLog.Warnf("skipping JWT rule %d without an issuer", i)
+            continue
+        }
        provider := &envoy_jwt.JwtProvider{
            Issuer:            jwtRule.Issuer,
            Audiences:         jwtRule.Audiences,
""", "func convertToEnvoyJwtConfig(jwtRules []*v1beta1.JWTRule, push *model.PushContext) *envoy_jwt.JwtAuthentication {")])

P_HEADER_NAME = FD("pkg/config/validation/virtualservice.go", [G(311, """
    return
}

+// validateHeaderName refuses names Envoy would reject when it loads the route, so that the
+// error is reported on the VirtualService instead of as a rejected xDS push.
+func validateHeaderName(name string) error {
+    if name == "" {
+        return errors.New("header name cannot be empty")
+    }
+    if strings.HasPrefix(name, ":") {
+        return fmt.Errorf("pseudo-header %q cannot be set or removed", name)
+    }
+    for _, r := range name {
+        if !isTokenRune(r) {
+            return fmt.Errorf("header name %q contains %q, which is not a token character", name, r)
+        }
+    }
+    return nil
+}
+
func validateHTTPHeaderOperations(headers *networking.Headers) (errs error) {
    if headers == nil {
        return
""", "func validateHTTPHeaderNameAndValue(name, value string) (errs error) {")])

P_UPDATE_PROXY = FD("bin/update_proxy.sh", [H(24, """
 # Update the proxy SHA used to fetch the Envoy binary built by the proxy repository.
 PROXY_REPO_SHA="${1:?usage: update_proxy.sh <proxy-sha>}"
-sed -i "s/PROXY_REPO_SHA=.*/PROXY_REPO_SHA=${PROXY_REPO_SHA}/" istio.deps
+# Refuse anything but a full commit SHA: a branch name would make the build download
+# whatever Envoy binary the branch points at on the day it runs.
+if ! [[ "${PROXY_REPO_SHA}" =~ ^[0-9a-f]{40}$ ]]; then
+  echo "update_proxy.sh: expected a 40-character commit SHA, got '${PROXY_REPO_SHA}'" >&2
+  exit 1
+fi
+sed -i "s/PROXY_REPO_SHA=.*/PROXY_REPO_SHA=${PROXY_REPO_SHA}/" istio.deps

 echo "Updated the proxy to ${PROXY_REPO_SHA}; run 'make update-common' next."
""")])

P_GOMOD = FD("go.mod", [G(21, """
    github.com/davecgh/go-spew v1.1.2-0.20180830191138-d8f796af33cc
    github.com/docker/cli v25.0.3+incompatible
-    github.com/envoyproxy/go-control-plane v0.12.1-0.20240117015050-472addddff92
+    github.com/envoyproxy/go-control-plane v0.12.1-0.20240326194405-485b2263e153
    github.com/evanphx/json-patch/v5 v5.9.0
    github.com/fatih/color v1.16.0
    github.com/felixge/fgprof v0.9.4
""", "require (")])

P_GOSUM = FD("go.sum", [H(148, """
 github.com/envoyproxy/go-control-plane v0.9.1-0.20191026205805-5f8ba28d4473/go.mod h1:YTl/9mNaCwkRvm6d1a2C3ymFceY/DCBVvsKhRF0iEA4=
-github.com/envoyproxy/go-control-plane v0.12.1-0.20240117015050-472addddff92 h1:Qd8/vM6cvGcZ7cJo9Q8rUWsGkUNGDdeNNSE8vAvRC2o=
-github.com/envoyproxy/go-control-plane v0.12.1-0.20240117015050-472addddff92/go.mod h1:Mf4cyLYx8RkGzhUqPKp+kVvnQRy6Fq3TrfMFmzBXmvU=
+github.com/envoyproxy/go-control-plane v0.12.1-0.20240326194405-485b2263e153 h1:k3P3mXq2pY5H1dJnX9bS7eW0aV4tC8uLr6ZfMgNqKsE=
+github.com/envoyproxy/go-control-plane v0.12.1-0.20240326194405-485b2263e153/go.mod h1:7c4kB9xWmT2pQ1vN8sZ0dF6gH3jL5yRe9oUaPiCwXlM=
 github.com/envoyproxy/protoc-gen-validate v0.1.0/go.mod h1:iSmxcyjqTsJpI2R4NaDN7+kN2VEUnK/pcBlmesArF7c=
 github.com/envoyproxy/protoc-gen-validate v1.0.4 h1:gVPz/FMfvh57HdSJQyvBtF00j8JU4zdyUgIUNhlgg0A=
 github.com/envoyproxy/protoc-gen-validate v1.0.4/go.mod h1:qys6tmnRsYrQqIhm2bvKZH4Blx/1gTIZ2ZKVY1M+Yew=
""")])

P_ADS = FD("pilot/pkg/xds/ads.go", [G(274, """
    peerAddr := "0.0.0.0"
    if peerInfo, ok := peer.FromContext(ctx); ok {
        peerAddr = peerInfo.Addr.String()
    }
+    // A proxy that reconnects in a tight loop (because Envoy rejects its bootstrap, for
+    // example) must not make istiod compute a full push for every attempt.
+    if err := s.connectionRateLimit.Wait(ctx); err != nil {
+        return status.Errorf(codes.ResourceExhausted, "connection from %s rate limited: %v", peerAddr, err)
+    }

    if err := s.WaitForRequestLimit(stream.Context()); err != nil {
        log.Warnf("ADS: %q exceeded rate limit: %v", peerAddr, err)
""", "func (s *DiscoveryServer) Stream(stream DiscoveryStream) error {")])

P_EF_TEST = FD("pilot/pkg/networking/core/envoyfilter/listener_patch_test.go", [G(1502, """
        },
    }

+    t.Run("listener without filter chains", func(t *testing.T) {
+        lis := &listener.Listener{Name: "virtualInbound"}
+        efw := push.EnvoyFilters(&model.Proxy{Type: model.SidecarProxy, ConfigNamespace: "not-default"})
+        // Must not panic on a nil filter chain; the listener is returned unchanged.
+        got := patchListener(networking.EnvoyFilter_SIDECAR_INBOUND, efw.Patches, lis, false)
+        if got.Name != "virtualInbound" || len(got.FilterChains) != 0 {
+            t.Fatalf("unexpected listener after patching: %v", got)
+        }
+    })
+
    for _, tc := range testCases {
        t.Run(tc.name, func(t *testing.T) {
""", "func TestApplyListenerPatches(t *testing.T) {")])

P_RELNOTE = FD("releasenotes/notes/52011.yaml", [H(0, """
+apiVersion: release-notes/v2
+kind: bug-fix
+area: traffic-management
+issue:
+  - 52011
+releaseNotes:
+  - |
+    **Fixed** an EnvoyFilter patch on a listener without filter chains crashing istiod. The
+    patch is now skipped and Envoy receives the listener unchanged.
""")], new=True)

P_HELM_VALUES = FD("manifests/charts/istio-control/istio-discovery/values.yaml", [H(312, """
       limits:
         cpu: 2000m
         memory: 1024Mi
+    # Number of Envoy worker threads. 0 sizes the pool from the container's CPU limit
+    # (rounded up) instead of from the node's CPU count.
+    concurrency: 0

     # Controls if sidecar is injected at the front of the container list and blocks the start
     # of the other containers until the proxy is ready
""")])

P_ADMIN_CLIENT = FD("pkg/envoy/admin.go", [G(31, """
    "istio.io/istio/pkg/util/protomarshal"
)

+// adminClient talks to Envoy's admin listener on localhost. Every call is bounded: a proxy that
+// stops answering (while draining, for example) must not block the agent forever.
+var adminClient = &http.Client{Timeout: 5 * time.Second}
+
// GetConfigDump polls Envoy admin port for the config dump and returns the response.
func GetConfigDump(adminPort uint32) (*admin.ConfigDump, error) {
-    buffer, err := doEnvoyGet("config_dump", adminPort)
+    buffer, err := doEnvoyGet(adminClient, "config_dump", adminPort)
    if err != nil {
        return nil, err
    }
""")])

P_CLUSTER_SAN = FD("pilot/pkg/networking/core/cluster_tls.go", [G(540, """
    return nil
}

+// exactSANMatchers builds the matchers Envoy compares with the upstream certificate's DNS SANs.
+// A "*" in a DestinationRule subjectAltNames entry is compared literally, as Envoy does.
+func exactSANMatchers(sans []string) []*tls.SubjectAltNameMatcher {
+    matchers := make([]*tls.SubjectAltNameMatcher, 0, len(sans))
+    for _, san := range sans {
+        matchers = append(matchers, &tls.SubjectAltNameMatcher{
+            SanType: tls.SubjectAltNameMatcher_DNS,
+            Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}},
+        })
+    }
+    return matchers
+}
+
func (cb *ClusterBuilder) setAutoSniAndAutoSanValidation(mc *clusterWrapper, tls *networking.ClientTLSSettings) {
""", "func buildIstioMutualTLS(san []string, sni string) *networking.ClientTLSSettings {")])

P_API_PROTO = FD("api/networking/v1alpha3/envoy_filter.proto", [H(402, """
     // Match on a specific filter chain in a listener.
     FilterChainMatch filter_chain = 2;

+    // Match on the name of the filter chain, as set by the control plane. An empty name
+    // matches every filter chain. Envoy's own filter chain names are not stable across
+    // releases and should not be used here.
+    string filter_chain_name = 8;
+
     // Match a specific listener filter.
     string listener_filter = 7;
""", "message ListenerMatch {")])

P_DOCKERFILE = FD("pilot/docker/Dockerfile.proxyv2", [H(38, """
 # Install Envoy.
 ARG SIDECAR=envoy
 COPY ${TARGETARCH:-amd64}/${SIDECAR} /usr/local/bin/${SIDECAR}
+# The binary is never written at run time; make that explicit so a compromised agent cannot
+# replace the proxy it supervises.
+RUN chmod 0555 /usr/local/bin/${SIDECAR}

 # Environment variable indicating the exact proxy sha - for debugging or version-specific configs
 ENV ISTIO_META_ISTIO_PROXY_SHA=$proxy_version
""")])

P_INTEG_JWT = FD("tests/integration/security/jwt/jwt_test.go", [G(211, """
                    check.Status(http.StatusOK),
                ),
            },
+            {
+                name:          "token without issuer is rejected",
+                customizeCall: func(t framework.TestContext, from echo.Instance, opts *echo.CallOptions) {
+                    opts.HTTP.Path = "/valid-token-noauthz"
+                    opts.HTTP.Headers = headers.New().WithAuthz(jwt.TokenIssuer1WithoutIss).Build()
+                    opts.Check = check.Status(http.StatusUnauthorized)
+                },
+            },
        }
        for _, c := range callCount {
""", "func TestRequestAuthentication(t *testing.T) {")])

P_RA = FD("security/pkg/pki/ra/k8s_ra.go", [G(118, """
    if certOpts.TTL <= 0 {
        return nil, raerror.NewError(raerror.CSRError, fmt.Errorf("invalid TTL %v", certOpts.TTL))
    }
+    if certOpts.TTL > r.maxCertTTL {
+        // Envoy keeps serving with the certificate it has until it expires; a long TTL turns a
+        // leaked key into a long-lived credential.
+        certOpts.TTL = r.maxCertTTL
+    }
    certSigner := r.certSignerDomain
""", "func (r *KubernetesRA) SignWithCertChain(csrPEM []byte, certOpts ca.CertOpts) ([]string, error) {")])

P_AGENT = FD("pkg/envoy/agent.go", [G(140, """
    // Drain sidecar before shutting down: tell Envoy to stop accepting connections and give
    // in-flight requests time to finish.
    log.Infof("Agent draining Proxy for termination")
-    e := a.proxy.Drain(true)
+    e := a.proxy.Drain(!a.skipDrain.Load())
    if e != nil {
        log.Warnf("Error in invoking drain listeners endpoint: %v", e)
    }
""", "func (a *Agent) terminate() {")])

P_IPTABLES = FD("tools/istio-iptables/pkg/capture/run.go", [G(168, """
    // Do not redirect Envoy's own admin and stats ports back into the proxy.
    cfg.ruleBuilder.AppendRule(iptableslog.UndefinedCommand, constants.ISTIOINBOUND, constants.NAT, "-p", constants.TCP,
        "--dport", fmt.Sprint(cfg.cfg.ProxyAdminPort), "-j", constants.RETURN)
+    // Prometheus scrapes the merged metrics on 15020 and Envoy's own on 15090; neither may be
+    // captured, or a scrape loops through the inbound listener.
+    for _, port := range []string{"15020", "15090"} {
+        cfg.ruleBuilder.AppendRule(iptableslog.UndefinedCommand, constants.ISTIOINBOUND, constants.NAT, "-p", constants.TCP,
+            "--dport", port, "-j", constants.RETURN)
+    }
""", "func (cfg *IptablesConfigurator) handleInboundPortsInclude() {")])

P_WASM_RUNTIME = FD("pilot/pkg/model/extensions.go", [G(212, """
    return nil
}

+// wasmRuntime picks the runtime Envoy loads a plugin with. The null runtime is only for plugins
+// compiled into the proxy, which WasmPlugin resources never name.
+func wasmRuntime(pluginURL string) string {
+    if strings.HasPrefix(pluginURL, "null://") {
+        return "envoy.wasm.runtime.null"
+    }
+    return "envoy.wasm.runtime.v8"
+}
+
func toEnvoyHTTPFilter(wasmPlugin *WasmPluginWrapper) *hcm.HttpFilter {
""", "func (p *WasmPluginWrapper) MatchType(pluginType WasmPluginType) bool {")])

P_PY_BOOTSTRAP = FD("tools/packaging/check_bootstrap.py", [H(30, """
     with open(path, encoding="utf-8") as f:
         bootstrap = json.load(f)

+    # Envoy's admin listener can stop the proxy and dump its secrets' metadata: it must only
+    # ever listen on the loopback interface.
+    admin = bootstrap.get("admin", {}).get("address", {}).get("socket_address", {})
+    if admin.get("address") not in ("127.0.0.1", "::1", "localhost"):
+        errors.append(f"admin listener bound to {admin.get('address')!r}, expected loopback")
+
     for cluster in bootstrap.get("static_resources", {}).get("clusters", []):
         if cluster.get("name") == "xds-grpc" and "transport_socket" not in cluster:
""")])

P_LUA_SAMPLE = FD("samples/envoyfilter/lua-header-check.yaml", [H(0, """
+# Rejects requests whose user-agent header is longer than 1 KiB, using Envoy's Lua filter.
+apiVersion: networking.istio.io/v1alpha3
+kind: EnvoyFilter
+metadata:
+  name: reject-long-user-agent
+  namespace: istio-system
+spec:
+  configPatches:
+  - applyTo: HTTP_FILTER
+    match:
+      context: SIDECAR_INBOUND
+      listener:
+        filterChain:
+          filter:
+            name: envoy.filters.network.http_connection_manager
+            subFilter:
+              name: envoy.filters.http.router
+    patch:
+      operation: INSERT_BEFORE
+      value:
+        name: envoy.filters.http.lua
+        typed_config:
+          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
+          defaultSourceCode:
+            inlineString: |
+              -- Runs once per request, before routing.
+              function envoy_on_request(request_handle)
+                local ua = request_handle:headers():get("user-agent")
+                if ua ~= nil and string.len(ua) > 1024 then
+                  request_handle:respond({[":status"] = "431"}, "user-agent too long")
+                end
+              end
""")], new=True)

P_XDS_FILTERS = FD("pilot/pkg/xds/filters/filters.go", [
    G(16, """

import (
    core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
+    buffer "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
    cors "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
    fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
    grpcstats "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_stats/v3"
"""),
    G(96, """
            TypedConfig: protoconv.MessageToAny(&fault.HTTPFault{}),
        },
    }
+    // BufferLimit caps the request bodies Envoy buffers for filters that need the whole body.
+    BufferLimit = &hcm.HttpFilter{
+        Name: "envoy.filters.http.buffer",
+        ConfigType: &hcm.HttpFilter_TypedConfig{
+            TypedConfig: protoconv.MessageToAny(&buffer.Buffer{MaxRequestBytes: wrappers.UInt32(1 << 20)}),
+        },
+    }
    GrpcWeb = &hcm.HttpFilter{
        Name: wellknown.GRPCWeb,
""", "var ("),
])

P_READY = FD("pilot/cmd/pilot-agent/status/ready/probe.go", [G(77, """
    if !p.receivedFirstUpdate {
        return fmt.Errorf("config not received from XDS server (is Istiod running?)")
    }
-    return nil
+    // Envoy reports LIVE only after its listeners are initialised; PRE_INITIALIZING and
+    // INITIALIZING mean the pod would receive traffic it cannot serve yet.
+    if p.serverState != admin.ServerInfo_LIVE {
+        return fmt.Errorf("server is not live, current state is: %v", p.serverState.String())
+    }
+    return nil
}
""", "func (p *Probe) isEnvoyReady() error {")])

pad(PG_SERIES_2, 0, before=["    DefaultMaxWorkloadCertTTL = 90 * 24 * time.Hour"], go=True)
pad(P_BOOTSTRAP_VALUES, 0, after=[""])
pad(P_LISTENER_IMPORT, 1, after=["    listenerFilters := []*listener.ListenerFilter{}"], go=True)
pad(P_CLUSTER_MAXREQ, 0, before=["    }", ""], go=True)
pad(P_GATEWAY_SNI, 0, before=["    hosts := server.GetHosts()"], go=True)
pad(P_RUST_LINT, 0, before=["use std::path::PathBuf;"], after=["    if args.is_empty() {"])
pad(P_WASM_CC, 0, before=[""])
pad(P_JWT_ISSUER, 0, before=["    jwtProviders := make(map[string]*envoy_jwt.JwtProvider, len(jwtRules))",
                             "    jwtRequirements := make([]*envoy_jwt.JwtRequirement, 0, len(jwtRules))"], go=True)
pad(P_UPDATE_PROXY, 0, before=[""])
pad(P_GOMOD, 0, before=["    github.com/cncf/xds/go v0.0.0-20231128003011-0fa0005c9caa"], go=True)
pad(P_GOSUM, 0, before=["github.com/emicklei/go-restful/v3 v3.11.2/go.mod h1:Lq7ZbT1lGnXwPMs3p9Fy0KdNoV+UoBsKWEzr2xH8cAs=",
                        "github.com/envoyproxy/go-control-plane v0.9.0/go.mod h1:YTl/9mNaCwkRvm6d1a2C3ymFceY/DCBVvsKhRF0iEA4="])
pad(P_EF_TEST, 0, after=["            efw := push.EnvoyFilters(tc.proxy)"], go=True)
pad(P_CLUSTER_SAN, 0, after=["    if mc == nil || tls == nil {", "        return"], go=True)
pad(P_API_PROTO, 0, after=[""])
pad(P_INTEG_JWT, 0, after=["            c := c"], go=True)
pad(P_RA, 0, after=["    if certOpts.IsCA {",
                    "        return nil, raerror.NewError(raerror.CSRError, errors.New(\"CA certificates are not issued through the RA\"))"], go=True)
pad(P_IPTABLES, 0, after=["", "    if cfg.cfg.InboundInterceptionMode == \"TPROXY\" {", "        cfg.handleInboundPortsIncludeTproxy()"], go=True)
pad(P_WASM_RUNTIME, 0, after=["    if wasmPlugin == nil {", "        return nil"], go=True)
pad(P_PY_BOOTSTRAP, 0, after=['            errors.append("xds-grpc cluster has no transport socket")'])
pad(P_XDS_FILTERS, 1, after=["        ConfigType: &hcm.HttpFilter_TypedConfig{"], go=True)
pad(P_READY, 0, after=["", "func (p *Probe) checkConfigStatus() error {"])

# Look-alikes: the project's own proxy repository uses Envoy's layout for its filters.
L_STATS_CC = FD("source/extensions/filters/http/istio_stats/label_sanitizer.cc", [H(0, """
+#include "source/extensions/filters/http/istio_stats/label_sanitizer.h"
+
+#include <string>
+#include <string_view>
+
+namespace Istio {
+namespace Stats {
+
+// Peer metadata comes from the other end of the connection. A label value longer than this is
+// replaced, so that a client cannot mint an unbounded number of metric series.
+constexpr size_t kMaxLabelValueBytes = 256;
+
+std::string sanitizeLabelValue(std::string_view value) {
+  if (value.empty()) {
+    return "unknown";
+  }
+  if (value.size() > kMaxLabelValueBytes) {
+    return "oversized";
+  }
+  return std::string(value);
+}
+
+} // namespace Stats
+} // namespace Istio
""")], new=True)

L_STATS_H = FD("source/extensions/filters/http/istio_stats/label_sanitizer.h", [H(0, """
+#pragma once
+
+#include <string>
+#include <string_view>
+
+namespace Istio {
+namespace Stats {
+
+// Replaces empty and oversized peer-supplied label values.
+std::string sanitizeLabelValue(std::string_view value);
+
+} // namespace Stats
+} // namespace Istio
""")], new=True)

L_STATS_BUILD = FD("source/extensions/filters/http/istio_stats/BUILD", [H(18, """
 cc_library(
     name = "istio_stats",
-    srcs = ["istio_stats.cc"],
-    hdrs = ["istio_stats.h"],
+    srcs = [
+        "istio_stats.cc",
+        "label_sanitizer.cc",
+    ],
+    hdrs = [
+        "istio_stats.h",
+        "label_sanitizer.h",
+    ],
     deps = [
         "//extensions/common:metadata_object_lib",
         "@com_google_absl//absl/strings",
""")])

L_MX = FD("source/extensions/filters/network/metadata_exchange/metadata_exchange.cc", [H(128, """
 namespace Istio {
 namespace MetadataExchange {

+// Peer metadata larger than this is refused before it is buffered.
+constexpr uint32_t kMaxPeerMetadataBytes = 16 * 1024;
+
 bool MetadataExchangeFilter::readPeerHeader(Buffer& data) {
   if (data.length() < sizeof(Header)) {
     return false;
   }
   const Header header = readHeader(data);
-  if (header.magic != kMagic) {
+  // The length comes from the peer: bound it before waiting for that many bytes.
+  if (header.magic != kMagic || header.data_size > kMaxPeerMetadataBytes) {
     setConnState(ConnState::Invalid);
     return false;
   }
""")])

L_DISCOVERY = FD("source/extensions/common/workload_discovery/discovery.cc", [H(64, """
 namespace Istio {
 namespace WorkloadDiscovery {

-std::optional<WorkloadMetadata> WorkloadIndex::lookup(std::string_view address) const {
-  auto it = by_address_.find(std::string(address));
+// Lookups run on every connection; only the IP part of "ip:port" is indexed.
+std::optional<WorkloadMetadata> WorkloadIndex::lookup(std::string_view address) const {
+  const std::string ip(address.substr(0, address.rfind(':')));
+  auto it = by_address_.find(ip);
   if (it == by_address_.end()) {
     return std::nullopt;
   }
""")])

pad(L_STATS_BUILD, 0, before=[""])


def build_project():
    def fp(name, fds, subject, author, date, body, note, cls="project", expect="clean"):
        add("project/" + name, cls, expect, note,
            format_patch(fds, subject, author, date, body))

    def gd(name, fds, note, cls="project", expect="clean"):
        add("project/" + name, cls, expect, note, git_diff(fds))

    fp("project-01-envoyfilter-listener-nil.patch", [P_LISTENER_NIL],
       "pilot: skip EnvoyFilter filter-chain patches on listeners without chains", NADIA, P1,
       "Patching a listener that Envoy receives without filter chains dereferenced nil." + so(NADIA),
       "Go fix under pilot/pkg/networking/core/envoyfilter/ importing listener types")
    fp("project-02-pkg-envoy-concurrency.patch", [P_PROXY_ARGS],
       "pkg/envoy: derive Envoy --concurrency from the CPU limit", OWEN, P2,
       "Envoy started one worker per host CPU inside small containers." + so(OWEN),
       "pkg/envoy/proxy.go building Envoy's command line")
    fp("project-03-ca-cap-ttl.patch", [P_CA_TTL],
       "security: never sign workload certificates beyond the maximum TTL", FREYA, P3,
       "The requested validity was used as is." + so(FREYA),
       "security/pkg/server/ca/server.go certificate TTL cap")
    gd("project-04-secretcache-jitter.patch", [P_SECRET_JITTER],
       "security/pkg/nodeagent/cache jitter for certificate rotation")
    fp("project-05-operator-concurrency-validation.patch", [P_OPERATOR],
       "operator: validate global.proxy.concurrency", RAVI, P4,
       "Envoy refuses to start with a negative concurrency." + so(RAVI),
       "operator/ validation of proxy settings")
    fp("project-06-chart-envoy-bootstrap.patch", [P_BOOTSTRAP_YAML, P_BOOTSTRAP_VALUES],
       "gateway chart: optional Envoy bootstrap override with a connection cap", MEI, P5,
       "Lets operators cap downstream connections through Envoy's overload manager." + so(MEI),
       "Helm template envoy-bootstrap.yaml with envoy.* type URLs in YAML")
    fp("project-07-listener-buffer-limit.patch", [P_LISTENER_IMPORT],
       "pilot: helper to set the per-connection buffer limit on listeners", BRUNO, P6,
       "Adds the go-control-plane listener import used by the helper." + so(BRUNO),
       "Go importing github.com/envoyproxy/go-control-plane/envoy/config/listener/v3")
    fp("project-08-issue-link-in-message.patch", [P_CLUSTER_MAXREQ],
       "pilot: never send max_requests_per_connection 0 to the proxy", NADIA, P1,
       "Envoy treats 0 differently across releases: newer proxies read it as unlimited, older\n"
       "ones reject the whole cluster. See envoyproxy/envoy#12345 for the upstream behaviour,\n"
       "and https://github.com/envoyproxy/envoy/issues/31245 for the discussion." + so(NADIA),
       "commit message citing envoyproxy/envoy#12345 and an Envoy issue URL in prose (1 of 2 URL files)")
    fp("project-09-issue-link-in-comment.patch", [P_GATEWAY_SNI],
       "pilot: leave server_names empty for wildcard gateway hosts", OWEN, P2,
       "Explains in a comment why an empty list is sent." + so(OWEN),
       "Go comment linking an Envoy issue URL (2 of 2 URL files)")
    fp("project-10-python-listener-summary.patch", [P_PY_DUMP],
       "tools: summarize listeners from an Envoy config dump", FREYA, P3,
       "Used when debugging support cases." + so(FREYA),
       "Python tool reading Envoy admin config dumps (envoy.admin.v3 type URL)")
    fp("project-11-rust-xds-lint.patch", [P_RUST_LINT],
       "xds-lint: suggest current names for deprecated Envoy filter names", MEI, P4,
       "EnvoyFilter resources still use envoy.router and friends." + so(MEI),
       "Rust tool listing Envoy filter names as strings")
    fp("project-12-docs-source-extensions.patch", [P_DOCS],
       "docs: say where filter code lives", RAVI, P5,
       "Prompted by a question on the security list." + so(RAVI),
       "Markdown that mentions source/extensions/filters/http/ in prose")
    fp("project-13-wasm-extension-path-limit.patch", [P_WASM_CC, P_WASM_H],
       "wasm/attributegen: skip attribute patterns on very long paths", BRUNO, P6,
       "The project's own WebAssembly extension, built with the proxy-wasm SDK." + so(BRUNO),
       "project C++ WebAssembly extension under extensions/wasm/ in namespace mesh::wasm")
    gd("project-14-wasm-extension-build.patch", [P_WASM_BUILD],
       "BUILD of the WebAssembly extension using proxy_wasm_cc_binary, not envoy_cc_library")
    fp("project-15-jwt-rule-without-issuer.patch", [P_JWT_ISSUER],
       "pilot: skip RequestAuthentication JWT rules without an issuer", NADIA, P2,
       "The same class of problem as an Envoy advisory, fixed on our side of the config." + so(NADIA),
       "Go fix on JWT issuers, the same topic as an Envoy fix, using go-control-plane types")
    fp("project-16-header-name-validation.patch", [P_HEADER_NAME],
       "validation: reject header names Envoy would refuse", OWEN, P3,
       "Errors now show on the VirtualService instead of as NACKs." + so(OWEN),
       "Go header-name validation whose comments mention Envoy")
    gd("project-17-update-proxy-script.patch", [P_UPDATE_PROXY],
       "shell script that updates the Envoy binary SHA")
    fp("project-18-go-control-plane-bump.patch", [P_GOMOD, P_GOSUM],
       "deps: bump go-control-plane", FREYA, P4,
       "Picks up the new listener fields." + so(FREYA),
       "go.mod and go.sum lines naming github.com/envoyproxy/go-control-plane and protoc-gen-validate")
    fp("project-19-ads-connection-rate-limit.patch", [P_ADS],
       "xds: rate-limit new ADS connections", RAVI, P5,
       "A crash-looping Envoy reconnected hundreds of times a second." + so(RAVI),
       "Go change in pilot/pkg/xds/ads.go")
    gd("project-20-envoyfilter-test.patch", [P_EF_TEST],
       "ordinary Go test in pilot/pkg/networking/core/envoyfilter/")
    fp("project-21-release-note.patch", [P_RELNOTE],
       "release note for the EnvoyFilter crash fix", MEI, P6, "Signed-off-by: " + MEI,
       "release-note YAML mentioning EnvoyFilter and Envoy")
    gd("project-22-helm-values-concurrency.patch", [P_HELM_VALUES],
       "Helm values.yaml comment about Envoy worker threads")
    fp("project-23-envoy-admin-timeout.patch", [P_ADMIN_CLIENT],
       "pkg/envoy: bound calls to the Envoy admin API", BRUNO, P1,
       "A draining proxy left the agent waiting forever." + so(BRUNO),
       "pkg/envoy/admin.go talking to Envoy's admin listener")
    fp("project-24-cluster-san-matchers.patch", [P_CLUSTER_SAN],
       "pilot: build exact SAN matchers for upstream TLS", NADIA, P2,
       "Same topic as an Envoy TLS fix, on the control-plane side." + so(NADIA),
       "Go using go-control-plane TLS and matcher types")
    fp("project-25-api-envoy-filter-proto.patch", [P_API_PROTO],
       "api: match EnvoyFilter patches on filter chain names", OWEN, P3,
       "The project's own API, package istio.networking.v1alpha3." + so(OWEN),
       "the project's own proto api/networking/v1alpha3/envoy_filter.proto (not api/envoy/)")
    gd("project-26-dockerfile-proxyv2.patch", [P_DOCKERFILE],
       "Dockerfile that installs the Envoy binary")
    fp("project-27-integration-jwt-test.patch", [P_INTEG_JWT],
       "tests: token without issuer is rejected", FREYA, P4, "Signed-off-by: " + FREYA,
       "Go integration test for JWT handling")
    mbox = format_patch([P_RA], "ra: cap the TTL of certificates signed through Kubernetes", RAVI, P5,
                        "Signed-off-by: " + RAVI, number=(1, 2)) + \
        format_patch([P_AGENT], "agent: honour skipDrain when terminating", RAVI,
                     "Fri, 6 Mar 2026 17:20:45 +0100",
                     "Tells Envoy to drain only when the pod asked for it." + so(RAVI), number=(2, 2),
                     sha_seed="agent-drain")
    add("project/project-28-two-patch-series.mbox", "project", "clean",
        "a two-message format-patch series of Go changes in security/ and pkg/envoy/", mbox)
    fp("project-29-iptables-exclude-ports.patch", [P_IPTABLES],
       "iptables: never capture the metrics ports", MEI, P6,
       "Scrapes of Envoy's stats port looped through the inbound listener." + so(MEI),
       "Go iptables rules naming Envoy's ports")
    fp("project-30-wasm-runtime-selection.patch", [P_WASM_RUNTIME],
       "model: choose the Wasm runtime from the plugin URL", BRUNO, P1, "Signed-off-by: " + BRUNO,
       "Go strings envoy.wasm.runtime.v8 and envoy.wasm.runtime.null")
    fp("project-31-python-bootstrap-check.patch", [P_PY_BOOTSTRAP],
       "packaging: check that the admin listener is on loopback", NADIA, P2,
       "Signed-off-by: " + NADIA, "Python packaging check of the Envoy bootstrap JSON")
    fp("project-32-sample-envoyfilter-lua.patch", [P_LUA_SAMPLE],
       "samples: EnvoyFilter that rejects long user-agent headers", OWEN, P3,
       "Signed-off-by: " + OWEN,
       "sample EnvoyFilter YAML with inline Lua (envoy_on_request) and envoy.* filter names")
    fp("project-33-xds-buffer-filter.patch", [P_XDS_FILTERS],
       "xds: add a buffer filter with a 1 MiB limit", FREYA, P4, "Signed-off-by: " + FREYA,
       "Go importing go-control-plane filter packages and naming envoy.filters.http.buffer")
    add("project/project-34-plain-diff-agent.diff", "project", "clean",
        "plain git diff of pkg/envoy/agent.go", git_diff([P_AGENT]))
    fp("project-35-readiness-server-state.patch", [P_READY],
       "agent: report ready only when Envoy is LIVE", RAVI, P5, "Signed-off-by: " + RAVI,
       "Go readiness probe reading Envoy's server state")

    prefix = "source/extensions/filters/http/istio_stats/"
    fp("lookalike-01-istio-stats-label-cap.patch", [L_STATS_CC], "istio_stats: cap peer label values",
       MEI, P6, "Signed-off-by: " + MEI,
       "new file of the project's proxy filter at an Envoy-like path: namespace Istio, includes only its own header",
       cls="lookalike", expect="clean-if-declared:" + prefix)
    fp("lookalike-02-istio-stats-header-build.patch", [L_STATS_H, L_STATS_BUILD],
       "istio_stats: build the label sanitizer", MEI, P6, "Signed-off-by: " + MEI,
       "its new header and a plain cc_library BUILD change in the same declared istio_stats/ folder",
       cls="lookalike", expect="clean-if-declared:" + prefix)
    gd("lookalike-03-metadata-exchange-bound.patch", [L_MX],
       "the project's metadata_exchange network filter under source/extensions/filters/network/",
       cls="lookalike", expect="clean-if-declared:source/extensions/filters/network/metadata_exchange/")
    fp("lookalike-04-workload-discovery.patch", [L_DISCOVERY],
       "workload_discovery: index by IP only", BRUNO, P1, "Signed-off-by: " + BRUNO,
       "the project's workload_discovery extension under source/extensions/common/",
       cls="lookalike", expect="clean-if-declared:source/extensions/common/workload_discovery/")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
CC_HUNK = re.compile(r"^@@@ -(\d+),(\d+) -(\d+),(\d+) \+(\d+),(\d+) @@@")


def check_hunks(text, where):
    """Hunk headers must announce exactly the lines that follow them."""
    problems = []
    ls = text.split("\n")
    i = 0
    found = 0
    while i < len(ls):
        m = HUNK.match(ls[i])
        c = CC_HUNK.match(ls[i])
        if m:
            found += 1
            old = int(m.group(2)) if m.group(2) is not None else 1
            new = int(m.group(4)) if m.group(4) is not None else 1
            j = i + 1
            while (old > 0 or new > 0) and j < len(ls):
                l = ls[j]
                if l.startswith("\\"):
                    j += 1
                    continue
                if l.startswith(" "):
                    old -= 1
                    new -= 1
                elif l.startswith("-"):
                    old -= 1
                elif l.startswith("+"):
                    new -= 1
                else:
                    break
                j += 1
            if old != 0 or new != 0:
                problems.append(f"{where}: hunk at line {i + 1} is short (old {old}, new {new} left)")
            nxt = ls[j] if j < len(ls) else ""
            if (nxt.startswith("+") and not nxt.startswith("+++ ")) or \
               (nxt.startswith("-") and not nxt.startswith(("--- ", "-- "))) or \
               (nxt.startswith(" ") and nxt.strip()):
                problems.append(f"{where}: hunk at line {i + 1} is followed by an uncounted line {nxt!r}")
            i = j
        elif c:
            found += 1
            want = [int(c.group(2)), int(c.group(4)), int(c.group(6))]
            got = [0, 0, 0]
            j = i + 1
            while j < len(ls) and len(ls[j]) >= 2 and ls[j][0] in " +-" and ls[j][1] in " +-":
                cols = ls[j][:2]
                if "-" not in cols:
                    got[2] += 1
                for p in range(2):
                    if cols[p] == "-" or ("-" not in cols and cols[p] == " "):
                        got[p] += 1
                j += 1
            if got != want:
                problems.append(f"{where}: combined hunk at line {i + 1} counts {got}, header says {want}")
            i = j
        else:
            i += 1
    return found, problems


def texts_of(rel, data):
    """The diff texts inside one corpus file, with transfer encodings undone."""
    if rel.endswith(".gz"):
        return texts_of(rel[:-3], gzip.decompress(data))
    if rel.endswith(".tar"):
        out = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                out += texts_of(m.name, tar.extractfile(m).read())
        return out
    if rel.endswith(".zip"):
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for n in z.namelist():
                out += texts_of(n, z.read(n))
        return out
    if data.startswith(b"\xff\xfe"):
        text = data.decode("utf-16")
    else:
        text = data.decode("utf-8")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\x00", "")
    if rel.endswith(".json"):
        return []
    head = text.split("\n\n", 1)[0]
    if re.search(r"(?im)^content-transfer-encoding: *(base64|quoted-printable)|^content-type: *multipart/", head):
        msg = email.message_from_string(text, policy=email.policy.default)
        out = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            if payload:
                out.append(payload.decode("utf-8"))
        return out
    return [text]


def check_all():
    problems = []
    manifest_path = os.path.join(ROOT, "MANIFEST.tsv")
    with open(manifest_path, encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f]
    if rows[0] != ["file", "class", "expect", "note"]:
        problems.append("MANIFEST.tsv: bad header line")
    rows = rows[1:]
    listed = {r[0] for r in rows}
    on_disk = set()
    for d in ("envoy", "project"):
        for name in os.listdir(os.path.join(ROOT, d)):
            on_disk.add(f"{d}/{name}")
    for missing in sorted(on_disk - listed):
        problems.append(f"{missing}: not in MANIFEST.tsv")
    for extra in sorted(listed - on_disk):
        problems.append(f"{extra}: in MANIFEST.tsv but missing")
    envoy_addr, envoy_url = [], []
    hunks_total = 0
    for r in rows:
        if len(r) != 4:
            problems.append(f"MANIFEST.tsv: row {r!r} does not have 4 fields")
            continue
        rel, cls, expect, _ = r
        with open(os.path.join(ROOT, rel), "rb") as f:
            data = f.read()
        for ref in re.findall(r"^(?:caught-with|caught-after):(.*)$", expect):
            if ref not in listed:
                problems.append(f"{rel}: expect names {ref}, which is not in the corpus")
        if rel.startswith("envoy/dup-") and not rel.startswith("envoy/dup-ws-"):
            original = expect.split(":", 1)[1]
            with open(os.path.join(ROOT, original), "rb") as f:
                if f.read() != data:
                    problems.append(f"{rel}: not byte-identical to {original}")
        texts = texts_of(rel, data)
        for t in texts:
            if "envoyproxy.io" in t:
                envoy_addr.append(rel)
            if rel.startswith("project/") and "github.com/envoyproxy/envoy" in t:
                envoy_url.append(rel)
            found, p = check_hunks(t, rel)
            hunks_total += found
            problems += p
        if not rel.endswith(".json") and not any(check_hunks(t, rel)[0] for t in texts):
            problems.append(f"{rel}: no hunk found")
    if len(set(envoy_addr)) > 4:
        problems.append(f"envoyproxy.io addresses in {len(set(envoy_addr))} files (at most 4)")
    if len(set(envoy_url)) > 2:
        problems.append(f"Envoy repository URLs in {len(set(envoy_url))} project files (at most 2)")
    return problems, hunks_total, len(rows)


def main():
    if "--check" not in sys.argv:
        build_depth()
        build_vendored()
        build_case()
        build_content()
        build_content_unicode()
        build_encoding()
        build_split()
        build_dup()
        build_freetext()
        build_project()
        for d in ("envoy", "project"):
            shutil.rmtree(os.path.join(ROOT, d), ignore_errors=True)
            os.makedirs(os.path.join(ROOT, d))
        for rel, data in FILES.items():
            with open(os.path.join(ROOT, rel), "wb") as f:
                f.write(data)
        with open(os.path.join(ROOT, "MANIFEST.tsv"), "w", encoding="utf-8", newline="\n") as f:
            f.write("file\tclass\texpect\tnote\n")
            for row in MANIFEST:
                f.write("\t".join(row) + "\n")
    problems, hunks, files = check_all()
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{files} files, {hunks} hunks checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
