// Decodes credpool's HdrHistogram output with Java HdrHistogram (Debian's libhdrhistogram-java),
// an implementation credpool did not write. Run by tests/hdr_interop.rs in source-file mode:
//   java -cp /usr/share/java/hdrhistogram.jar Decode.java payloads FILE   (one base64 payload a line)
//   java -cp /usr/share/java/hdrhistogram.jar Decode.java hlog FILE       (an interval log)
// Prints one line per histogram: total count, min, max, then values at 50, 90, 99, 99.9 percent
// (ns); for a log, each line starts with the interval's start and end (s since epoch).
import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Base64;

public class Decode {
    static String figures(Histogram h) {
        return h.getTotalCount() + " " + h.getMinValue() + " " + h.getMaxValue() + " "
            + h.getValueAtPercentile(50) + " " + h.getValueAtPercentile(90) + " "
            + h.getValueAtPercentile(99) + " " + h.getValueAtPercentile(99.9);
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("payloads")) {
            for (String line : Files.readAllLines(Paths.get(args[1]))) {
                if (line.isEmpty()) continue;
                ByteBuffer buf = ByteBuffer.wrap(Base64.getDecoder().decode(line.trim()));
                System.out.println(figures(Histogram.decodeFromCompressedByteBuffer(buf, 0)));
            }
        } else if (args[0].equals("hlog")) {
            HistogramLogReader reader = new HistogramLogReader(args[1]);
            EncodableHistogram e;
            while ((e = reader.nextIntervalHistogram()) != null) {
                Histogram h = (Histogram) e;
                System.out.printf("%.3f %.3f %s%n", h.getStartTimeStamp() / 1000.0,
                    h.getEndTimeStamp() / 1000.0, figures(h));
            }
        } else {
            throw new IllegalArgumentException("payloads FILE | hlog FILE");
        }
    }
}
