"""HL7 v2 scheduling messages (SIU): parsing, acknowledgements, file import and MLLP listener."""
