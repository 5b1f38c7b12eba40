using System.IO.Compression;
using System.Runtime.InteropServices;

namespace NnUnet.Core.Imaging.Nifti;

/// <summary>
/// Opens a streaming gzip decompressor for .nii.gz files. Inflating dominates the load time of a compressed CT volume
/// (a 512x512x300 int16 scan is ~80 MB of deflate data), and Intel's ISA-L (<c>libisal.so.2</c>, Debian package
/// <c>libisal2</c>, installed by scripts/setup.sh) inflates about twice as fast as the zlib-ng inside .NET, so it is
/// used when the library is present and passes a self-test; otherwise, and when <c>NNUNET_GZIP=zlib</c> is set,
/// .NET's <see cref="GZipStream"/> is used. Both stream (no whole-file buffers) and read concatenated gzip members
/// (bgzip files); both report a corrupt stream as <see cref="InvalidDataException"/> and a cut one as an early end.
/// </summary>
public static class GzipDecompression
{
    private static readonly Lazy<IsalInflate?> Isal = new(IsalInflate.TryLoad);

    /// <summary>Which decompressor <see cref="Open(Stream)"/> uses on this machine (printed by benchmarks and diagnostics).</summary>
    public static string Backend => UseIsal ? "isa-l" : $"zlib-ng (System.IO.Compression; isa-l: {IsalInflate.Unavailable ?? "disabled by NNUNET_GZIP"})";

    private static bool UseIsal =>
        !string.Equals(Environment.GetEnvironmentVariable("NNUNET_GZIP"), "zlib", StringComparison.OrdinalIgnoreCase) && Isal.Value is not null;

    /// <summary>A forward-only stream of the decompressed bytes; <paramref name="compressed"/> stays open.</summary>
    public static Stream Open(Stream compressed) => Open(compressed, UseIsal);

    /// <summary>The ISA-L stream when <paramref name="isal"/> (and the library is usable), .NET's otherwise: tests compare both.</summary>
    internal static Stream Open(Stream compressed, bool isal) =>
        isal && Isal.Value is { } library ? new IsalGzipStream(library, compressed) : new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true);

    /// <summary>Whether ISA-L loaded and passed its self-test on this machine.</summary>
    public static bool IsalAvailable => Isal.Value is not null;

    /// <summary>
    /// Entry points and struct offsets of ISA-L's <c>struct inflate_state</c> (libisal.so.2, ISA-L 2.x). The offsets
    /// are ABI facts read off igzip_lib.h with offsetof; <see cref="TryLoad"/> proves them on a round trip before use,
    /// so a library whose layout differs is never used.
    /// </summary>
    internal sealed unsafe class IsalInflate
    {
        public const int StateSize = 87368 + 4096; // sizeof(struct inflate_state) + slack
        public const int NextOut = 0, AvailOut = 8, TotalOut = 12, NextIn = 16, AvailIn = 32, BlockState = 21160, CrcFlag = 21172;
        public const int GzipWrapper = 1; // ISAL_GZIP: parse the gzip header, check CRC32 and size in the trailer
        public const int BlockFinish = 5; // ISAL_BLOCK_FINISH

        public readonly delegate* unmanaged<void*, void> Init;
        public readonly delegate* unmanaged<void*, int> Inflate;

        private IsalInflate(nint library)
        {
            Init = (delegate* unmanaged<void*, void>)NativeLibrary.GetExport(library, "isal_inflate_init");
            Inflate = (delegate* unmanaged<void*, int>)NativeLibrary.GetExport(library, "isal_inflate");
        }

        /// <summary>Why ISA-L is not used (null when it is).</summary>
        public static string? Unavailable { get; private set; }

        public static IsalInflate? TryLoad()
        {
            if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
                return Fail("only used on Linux x86-64");
            if (!NativeLibrary.TryLoad("libisal.so.2", out var library)) return Fail("libisal.so.2 not found (apt-get install libisal2)");
            try
            {
                var isal = new IsalInflate(library);
                return SelfTestPasses(isal) ? isal : Fail("self-test failed (unexpected struct layout)");
            }
            catch (EntryPointNotFoundException e) { return Fail(e.Message); }
        }

        private static IsalInflate? Fail(string reason)
        {
            Unavailable = reason;
            return null;
        }

        // Two gzip members (as bgzip writes them) must come back byte for byte, and a flipped CRC must be refused.
        private static bool SelfTestPasses(IsalInflate isal)
        {
            var original = new byte[200_000];
            for (int i = 0; i < original.Length; i++) original[i] = (byte)(i * 7 % 251 ^ i >> 9);
            using var compressed = new MemoryStream();
            foreach (var half in new[] { original.AsMemory(0, 90_000), original.AsMemory(90_000) })
                using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(half.Span);
            var bytes = compressed.ToArray();
            var back = new byte[original.Length + 1];
            try
            {
                using var stream = new IsalGzipStream(isal, new MemoryStream(bytes));
                int got = stream.ReadAtLeast(back, back.Length, throwOnEndOfStream: false);
                if (got != original.Length || !back.AsSpan(0, got).SequenceEqual(original)) return false;
            }
            catch (InvalidDataException) { return false; }
            bytes[^8] ^= 0xff; // the second member's CRC32
            try
            {
                using var corrupt = new IsalGzipStream(isal, new MemoryStream(bytes));
                corrupt.ReadAtLeast(back, back.Length, throwOnEndOfStream: false);
                return false;
            }
            catch (InvalidDataException) { return true; }
        }
    }

    /// <summary>Read-only, forward-only gzip stream over ISA-L; owns its native state and input buffer.</summary>
    private sealed unsafe class IsalGzipStream : Stream
    {
        private const int InputBufferSize = 1 << 20;
        private readonly IsalInflate _isal;
        private readonly Stream _source;
        private byte* _state;
        private byte* _input;
        private bool _sourceDone;

        public IsalGzipStream(IsalInflate isal, Stream source)
        {
            _isal = isal;
            _source = source;
            _state = (byte*)NativeMemory.AllocZeroed(IsalInflate.StateSize);
            _input = (byte*)NativeMemory.Alloc(InputBufferSize);
            StartMember();
        }

        // isal_inflate_init clears the buffer pointers too: the input left over and the output space carry across members
        private void StartMember()
        {
            byte* nextIn = *(byte**)(_state + IsalInflate.NextIn), nextOut = *(byte**)(_state + IsalInflate.NextOut);
            uint availIn = AvailIn, availOut = AvailOut;
            _isal.Init(_state);
            *(uint*)(_state + IsalInflate.CrcFlag) = IsalInflate.GzipWrapper;
            *(byte**)(_state + IsalInflate.NextIn) = nextIn;
            *(byte**)(_state + IsalInflate.NextOut) = nextOut;
            AvailIn = availIn;
            AvailOut = availOut;
        }

        private ref uint AvailIn => ref *(uint*)(_state + IsalInflate.AvailIn);
        private ref uint AvailOut => ref *(uint*)(_state + IsalInflate.AvailOut);

        private bool Refill()
        {
            if (_sourceDone) return false;
            int n = _source.Read(new Span<byte>(_input, InputBufferSize));
            if (n == 0) { _sourceDone = true; return false; }
            *(byte**)(_state + IsalInflate.NextIn) = _input;
            AvailIn = (uint)n;
            return true;
        }

        public override int Read(Span<byte> buffer)
        {
            ObjectDisposedException.ThrowIf(_state is null, this);
            if (buffer.IsEmpty) return 0;
            fixed (byte* output = buffer)
            {
                *(byte**)(_state + IsalInflate.NextOut) = output;
                AvailOut = (uint)buffer.Length;
                while (true)
                {
                    if (*(int*)(_state + IsalInflate.BlockState) == IsalInflate.BlockFinish)
                    {
                        // end of a member: another one may follow (concatenated gzip, bgzip)
                        if (AvailIn == 0 && !Refill()) break;
                        StartMember();
                        continue;
                    }
                    if (AvailIn == 0 && !Refill()) break; // input ends inside a member: a cut stream reads as an early end
                    uint inBefore = AvailIn, outBefore = AvailOut;
                    int status = _isal.Inflate(_state);
                    if (status < 0)
                        throw new InvalidDataException($"the gzip stream is corrupt (ISA-L inflate error {status}: {Describe(status)})");
                    if (AvailOut == 0) break;
                    if (AvailIn == inBefore && AvailOut == outBefore && *(int*)(_state + IsalInflate.BlockState) != IsalInflate.BlockFinish)
                        throw new InvalidDataException($"the gzip stream is corrupt (ISA-L inflate made no progress, status {status})");
                }
                return buffer.Length - (int)AvailOut;
            }
        }

        private static string Describe(int status) => status switch
        {
            -1 => "invalid deflate block",
            -2 => "invalid deflate symbol",
            -3 => "invalid look-back distance",
            -4 => "invalid gzip header",
            -5 => "unsupported compression method",
            -6 => "CRC32 or size check failed",
            _ => "unknown error",
        };

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (_state is not null) { NativeMemory.Free(_state); _state = null; }
            if (_input is not null) { NativeMemory.Free(_input); _input = null; }
            base.Dispose(disposing);
        }
    }
}
