"""Every supported format reads to text; bad files raise SkipFile with a one-line reason."""

import pytest

from lantern.knowledge.readers import SkipFile, read_document


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF with a real text layer (Helvetica, one line)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_markdown_and_code_are_read_verbatim_with_normalised_newlines(tmp_path):
    md = tmp_path / "a.md"
    md.write_bytes(b"\xef\xbb\xbf# T\r\n\r\nBody\r\n")
    doc = read_document(md, 10_000)
    assert doc.format == "markdown" and doc.text == "# T\n\nBody\n"
    code = tmp_path / "b.py"
    code.write_text("def f():\n    return 1\n")
    assert read_document(code, 10_000).format == "code"


def test_html_keeps_visible_text_and_headings(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>x</title><script>var a=1;</script></head><body><h1>Loop</h1><p>The gate  exits.</p><h2>More</h2><p>Two</p></body></html>")
    doc = read_document(page, 10_000)
    assert "# Loop" in doc.text and "## More" in doc.text and "The gate exits." in doc.text
    assert "var a" not in doc.text


def test_pdf_text_layer_is_extracted(tmp_path):
    pdf = tmp_path / "d.pdf"
    pdf.write_bytes(make_pdf("Ouro loops four times"))
    doc = read_document(pdf, 1_000_000)
    assert doc.format == "pdf" and "Ouro loops four times" in doc.text


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("bad.pdf", b"%PDF-1.4\nthis is not really a pdf", "PDF"),
        ("bin.txt", b"abc\x00\x01\x02def", "binary"),
        ("latin.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "UTF-8"),
        ("big.md", b"x" * 5000, "too large"),
        ("image.png", b"\x89PNG", "unsupported"),
        ("empty.md", b"   \n\n", "no text"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=reason):
        read_document(path, 4000)
