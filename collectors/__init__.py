"""The collector agent: tails an agency's logs and ships them, unparsed, to Kafka."""
